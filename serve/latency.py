"""The allocate and release latency of a replica, for its metrics: a plain ASGI wrapper (no
per-request objects for the other routes) that times the two routes and reports the seconds
to ``observe(route, seconds)``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

#: The routes timed, by (method, path), and their names in the metrics.
TIMED = {
    ("POST", "/scheduler/devices/allocate"): "allocate",
    ("POST", "/scheduler/devices/release"): "release",
}


class LatencyMiddleware:
    def __init__(self, app: Any, observe: Callable[[str, float], None]) -> None:
        self._app = app
        self._observe = observe

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        route = (
            TIMED.get((scope.get("method"), scope.get("path"))) if scope["type"] == "http" else None
        )
        if route is None:
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self._app(scope, receive, send)
        finally:
            self._observe(route, time.perf_counter() - started)
