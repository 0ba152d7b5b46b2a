"""FastAPI dependencies: the process's services and the calling principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from scheduler.bootstrap import Services
from scheduler.domain.errors import InvalidRequest, Unauthenticated
from scheduler.domain.identity import Principal

MAX_IDEMPOTENCY_KEY = 200


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(
    services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """Raises:
    Unauthenticated: no bearer token, or an unknown one.
    """
    if not authorization:
        raise Unauthenticated("an Authorization: Bearer token is required")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return await services.authenticator.authenticate(token.strip())


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_idempotency_key(
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
