"""FastAPI dependencies: the process's services and the calling principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from scheduler.bootstrap import Services
from scheduler.domain.errors import InvalidRequest
from scheduler.domain.identity import Principal

MAX_IDEMPOTENCY_KEY = 200


# Dependencies are ``async def``: FastAPI runs plain ``def`` ones in a thread pool, a thread
# hand-off per dependency per request.


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(request: Request) -> Principal:
    """The caller, resolved by ``BearerAuthMiddleware`` before the route ran."""
    principal: Principal = request.state.principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_idempotency_key(
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> str | None:
    """Raises:
    InvalidRequest: the key is empty or longer than 200 characters.
    """
    if idempotency_key is None:
        return None
    if not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidRequest("Idempotency-Key must be 1 to 200 characters")
    return idempotency_key


IdempotencyKeyDep = Annotated[str | None, Depends(get_idempotency_key)]
