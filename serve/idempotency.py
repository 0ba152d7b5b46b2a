"""``Idempotency-Key`` on any route: ``await idempotent(request, services, principal, key,
run)`` runs ``run`` once per key and answers every retry with the first response.

The response stored is exactly what the client got: status, media type and body bytes,
refusals included (a 4xx problem, built by the app's own error handler). Failures a retry
should run again are not stored: 5xx errors, crashes, and answers that ask the client to
come back (``Retry-After``, e.g. a full queue); their claim is dropped and they propagate.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from scheduler.bootstrap import Services
from scheduler.domain.errors import SchedulerError
from scheduler.domain.identity import Principal
from scheduler.services.idempotency import (
    IdempotencyKeyInProgress,
    StoredResponse,
    request_fingerprint,
    run_once,
)
from serve.deps import get_idempotency_key
from serve.errors import problem

REPLAYED_HEADER = "Idempotent-Replayed"


def json_response(model: BaseModel, status_code: int = 200) -> JSONResponse:
    """A route's answer rendered as FastAPI would render its ``response_model``."""
    return JSONResponse(model.model_dump(mode="json"), status_code=status_code)


async def error_response(request: Request, error: SchedulerError) -> Response:
    """The response the app's exception handler gives ``error`` (the most specific one
    registered, as Starlette picks it).

    Raises:
        SchedulerError: ``error`` itself, when no handler is registered for it.
    """
    handlers = request.app.exception_handlers
    for cls in type(error).__mro__:
        handler = handlers.get(cls)
        if handler is not None:
            response: Response = await handler(request, error)
            return response
    raise error


def _worth_keeping(response: Response) -> bool:
    return response.status_code < 500 and "retry-after" not in response.headers


async def _body(request: Request) -> object:
    raw = await request.body()
    return json.loads(raw) if raw else None


async def idempotent(
    request: Request,
    services: Services,
    principal: Principal,
    key: str | None,
    run: Callable[[], Awaitable[Response]],
) -> Response:
    """``run()``'s response; with a key, the first response to that key.

    Raises:
        IdempotencyKeyReused: the key was first used for another request (422).
        SchedulerError: ``run`` failed in a way not worth keeping (not stored).
    """
    if key is None:
        return await run()
    route = request.scope.get("route")
    operation = f"{request.method} {getattr(route, 'path', request.url.path)}"
    try:
        body = await _body(request)
    except ValueError:
        return await run()  # not JSON: the route refuses it (400) and nothing is kept
    fingerprint = request_fingerprint(request.method, request.url.path, body)

    async def action() -> StoredResponse:
        try:
            response = await run()
        except SchedulerError as error:
            response = await error_response(request, error)
            if not _worth_keeping(response):
                raise
        if not _worth_keeping(response):
            raise _Transient(response)
        return StoredResponse(
            response.status_code,
            response.media_type or "application/json",
            bytes(response.body).decode(),
        )

    try:
        stored, replayed = await run_once(
            services.uow,
            principal,
            key,
            action,
            operation=operation,
            fingerprint=fingerprint,
            now=services.clock(),
        )
    except IdempotencyKeyInProgress as error:
        retry_after = str(error.retry_after_seconds)
        return problem(409, error.code, error.detail, headers={"Retry-After": retry_after})
    except _Transient as transient:
        return transient.response
    return Response(
        stored.content,
        status_code=stored.status,
        media_type=stored.media_type,
        headers={REPLAYED_HEADER: "true"} if replayed else None,
    )


class _Transient(Exception):
    """A response ``run`` returned that must not be kept (its claim is dropped)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class IdempotentRoute(APIRoute):
    """A route class that makes every mutating route of its router honour
    ``Idempotency-Key`` (for routers whose handlers do not call ``idempotent`` themselves)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not self.methods & MUTATING:
            return handler

        async def route(request: Request) -> Response:
            key = get_idempotency_key(request.headers.get("idempotency-key"))
            if key is None:
                return await handler(request)
            services: Services = request.app.state.services
            principal: Principal = request.state.principal
            return await idempotent(request, services, principal, key, lambda: handler(request))

        return route
