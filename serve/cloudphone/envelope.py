"""The original platform's envelope around every answer under ``/cloudphone``:
``{success: true, data, timestamp, path, requestId}`` for a success, and
``{success: false, statusCode, message, errorCode, timestamp, path, requestId}`` (the
status kept) for an error — whoever refused it: authentication, validation or a command.

As ASGI middleware outside the authentication, so its 401 and 429 are wrapped too.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/cloudphone"


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return str(value.decode("latin-1"))[:200]
    return str(uuid.uuid4())


def _path(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope['path']}?{query}" if query else str(scope["path"])


def envelope(status: int, body: bytes, scope: Scope) -> dict[str, Any]:
    """The original's envelope around an answer of ``status`` whose JSON body is ``body``
    (a problem+json body when ``status`` is an error)."""
    data = json.loads(body) if body else None
    common = {
        "timestamp": datetime.now(UTC).isoformat(),
        "path": _path(scope),
        "requestId": _request_id(scope),
    }
    if status < 400:
        return {"success": True, "data": data, **common}
    problem = data if isinstance(data, dict) else {}
    wrapped = {
        "success": False,
        "statusCode": status,
        "message": problem.get("detail", ""),
        "errorCode": problem.get("code", "error"),
        **common,
    }
    if "errors" in problem:
        wrapped["errors"] = problem["errors"]
    return wrapped


class ConsoleEnvelopeMiddleware:
    """Wraps the JSON answers of ``/cloudphone`` requests; other paths pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX + "/"):
            await self._app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def wrap(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            headers = MutableHeaders(raw=list(start["headers"]))
            body = b"".join(chunks)
            if "json" in headers.get("content-type", "") or not body:
                body = json.dumps(envelope(start["status"], body, scope)).encode()
                headers["content-type"] = "application/json"
                headers["content-length"] = str(len(body))
            await send({**start, "headers": headers.raw})
            await send({"type": "http.response.body", "body": body})

        await self._app(scope, receive, wrap)
