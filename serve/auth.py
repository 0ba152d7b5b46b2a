"""Bearer-token authentication as ASGI middleware, so that an unauthenticated call is
refused with 401 before its body or parameters are even parsed."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from scheduler.bootstrap import Services
from scheduler.domain.errors import InfrastructureError, Unauthenticated
from serve.errors import problem

PROTECTED_PREFIX = "/scheduler"


def bearer_token(scope: Scope) -> str:
    """Raises:
    Unauthenticated: no ``Authorization: Bearer <token>`` header.
    """
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    raise Unauthenticated("an Authorization: Bearer token is required")


class BearerAuthMiddleware:
    """Resolves the caller of every ``/scheduler`` request into ``scope["state"]``."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self._app = app
        self._services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PROTECTED_PREFIX):
            try:
                credential = await self._services.authenticator.authenticate(bearer_token(scope))
            except Unauthenticated as error:
                response = problem(
                    401, error.code, error.detail, headers={"WWW-Authenticate": "Bearer"}
                )
                await response(scope, receive, send)
                return
            except InfrastructureError as error:  # the database is down: not the caller's fault
                response = problem(503, error.code, error.detail, headers={"Retry-After": "1"})
                await response(scope, receive, send)
                return
            state = scope.setdefault("state", {})
            state["principal"], state["credential"] = credential.principal, credential
        await self._app(scope, receive, send)
