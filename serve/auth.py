"""Bearer-token authentication and rate limits as ASGI middleware, so that a call is refused
(401, 429) before its body or parameters are even parsed.

Every ``/scheduler`` request draws from its token's bucket and its tenant's (a request with
an unknown token, from its client address's): 429 ``rate_limited`` with ``Retry-After`` when
one is empty, and ``RateLimit-Limit``/``-Remaining``/``-Reset`` on every answer.

The caller is a PhoneFleet token, a platform JWT (when configured), or — only on a request
that carries ``PHONEFLEET_TRUSTED_PROXY_SECRET`` in ``x-phonefleet-proxy-secret`` — the user
the platform's gateway names in ``x-user-id``/``x-user-tenant``/``x-user-roles`` (those
headers are ignored on any other request). A platform caller's unknown tenant is 403
``tenant_not_found``; a user the platform suspended is 403 ``user_suspended``. Platform users' buckets are keyed on the user, never on the gateway's
address.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.bootstrap import Services
from scheduler.domain.errors import (
    InfrastructureError,
    RateLimited,
    TenantNotFound,
    Unauthenticated,
    UserSuspended,
)
from scheduler.domain.identity import Credential
from scheduler.domain.rate_limits import RateLimit, RateVerdict, address_bucket, buckets_of
from serve.errors import problem

#: The native API, and the platform console's calls under ``/cloudphone``.
PROTECTED_PREFIXES = ("/scheduler", "/cloudphone/scheduler")
PROXY_SECRET_HEADER = "x-phonefleet-proxy-secret"
GATEWAY_HEADERS = ("x-user-id", "x-user-tenant", "x-user-roles")


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


def rate_headers(verdict: RateVerdict) -> dict[str, str]:
    if not verdict.limit:
        return {}
    return {
        "RateLimit-Limit": str(verdict.limit),
        "RateLimit-Remaining": str(verdict.remaining),
        "RateLimit-Reset": str(verdict.reset_seconds),
    }


class BearerAuthMiddleware:
    """Resolves the caller of every ``/scheduler`` request into ``scope["state"]``, and
    applies its rate limits."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self._app = app
        self._services = services

    async def _limited(
        self, scope: Scope, receive: Receive, send: Send, buckets: Sequence[tuple[str, RateLimit]]
    ) -> RateVerdict | None:
        """The verdict, or ``None`` when the request was refused (429, answered here)."""
        verdict = await self._services.rate_limiter.check(buckets)
        if verdict.allowed:
            return verdict
        refused = RateLimited(f"too many requests; retry in {verdict.retry_after_seconds} s")
        headers = {"Retry-After": str(verdict.retry_after_seconds), **rate_headers(verdict)}
        await problem(429, refused.code, refused.detail, headers=headers)(scope, receive, send)
        return None

    async def _caller(self, scope: Scope) -> Credential:
        """The gateway's user on a request that proves it came through the gateway; else
        the bearer token's owner."""
        authenticator = self._services.authenticator
        secret = self._services.settings.trusted_proxy_secret
        if secret:
            headers = {
                name.decode("latin-1"): value.decode("latin-1")
                for name, value in scope["headers"]
                if name in (PROXY_SECRET_HEADER.encode(), *(h.encode() for h in GATEWAY_HEADERS))
            }
            given = headers.get(PROXY_SECRET_HEADER, "")
            if "x-user-id" in headers and hmac.compare_digest(given.encode(), secret.encode()):
                return await authenticator.authenticate_gateway(headers)
        return await authenticator.authenticate(bearer_token(scope))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIXES):
            await self._app(scope, receive, send)
            return
        default = self._services.default_rate_limit
        try:
            credential = await self._caller(scope)
            who = credential.principal
            await self._services.suspended_users.check(who.user_id, who.tenant_id)
        except (TenantNotFound, UserSuspended) as error:
            await problem(403, error.code, error.detail)(scope, receive, send)
            return
        except Unauthenticated as error:
            address = (scope.get("client") or ("unknown",))[0]
            if await self._limited(scope, receive, send, address_bucket(address, default)):
                response = problem(
                    401, error.code, error.detail, headers={"WWW-Authenticate": "Bearer"}
                )
                await response(scope, receive, send)
            return
        except InfrastructureError as error:  # the database is down: not the caller's fault
            response = problem(503, error.code, error.detail, headers={"Retry-After": "1"})
            await response(scope, receive, send)
            return
        principal = credential.principal
        buckets = buckets_of(
            credential.token_id, principal.tenant_id, credential.rate_limit, default
        )
        verdict = await self._limited(scope, receive, send, buckets)
        if verdict is None:
            return
        state = scope.setdefault("state", {})
        state["principal"], state["credential"] = principal, credential
        extra = rate_headers(verdict)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        await self._app(scope, receive, send_with_headers)
