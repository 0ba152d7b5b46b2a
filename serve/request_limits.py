"""Limits every request meets before a route sees it: bodies over 1 MiB are refused with 413
(by their ``Content-Length`` at once, else as soon as the streamed body passes the limit,
never after reading it whole), and URLs carrying NUL characters with 422."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve.errors import problem

MAX_BODY_BYTES = 1024 * 1024


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large() -> JSONResponse:
    return problem(
        413, "payload_too_large", f"the request body is larger than {MAX_BODY_BYTES} bytes"
    )


class RequestLimitsMiddleware:
    """Refuses oversized bodies and NUL characters in the URL before any route runs."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self._app = app
        self._max = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        url = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        if b"\x00" in unquote_to_bytes(url):
            await problem(422, "validation_error", "the URL must not contain NUL characters")(
                scope, receive, send
            )
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self._max:
            await _too_large()(scope, receive, send)
            return
        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max:
                    refused = True
                    await _too_large()(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # the 413 went out; whatever the route makes of it is dropped
                await send(message)

        await self._app(scope, limited_receive, guarded_send)
