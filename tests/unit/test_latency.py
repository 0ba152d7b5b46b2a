"""The replicas' latency timer: only allocate and release are timed, errors included."""

from __future__ import annotations

from typing import Any

import pytest

from actors.metrics import RelayedSince
from serve.latency import LatencyMiddleware


async def _call(method: str, path: str, *, fail: bool = False) -> list[tuple[str, float]]:
    seen: list[tuple[str, float]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if fail:
            raise RuntimeError("boom")

    middleware = LatencyMiddleware(app, observe=lambda route, s: seen.append((route, s)))
    scope = {"type": "http", "method": method, "path": path}
    if fail:
        with pytest.raises(RuntimeError):
            await middleware(scope, None, None)
    else:
        await middleware(scope, None, None)
    return seen


async def test_allocate_and_release_are_timed_and_nothing_else() -> None:
    assert [r for r, _ in await _call("POST", "/scheduler/devices/allocate")] == ["allocate"]
    assert [r for r, _ in await _call("POST", "/scheduler/devices/release")] == ["release"]
    assert await _call("GET", "/scheduler/devices/allocate") == []
    assert await _call("GET", "/scheduler/nodes") == []
    assert [r for r, _ in await _call("POST", "/scheduler/devices/allocate", fail=True)] == [
        "allocate"
    ]


def test_relayed_events_are_counted_once() -> None:
    from collections import Counter

    since = RelayedSince()
    total: Counter[str] = Counter({"allocation.granted": 2})
    assert since.new(total) == Counter({"allocation.granted": 2})
    total.update({"allocation.granted": 1, "allocation.released": 1})
    assert since.new(total) == Counter({"allocation.granted": 1, "allocation.released": 1})
    assert since.new(total) == Counter()
