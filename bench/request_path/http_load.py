"""Allocate+release pairs over HTTP: one keep-alive ``httpx.AsyncClient`` per client, each
with its own user token, as a real fleet of callers would be; and the bare HTTP round trip
(``GET /healthz``) of the same server, for reference."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence

import httpx

from bench.request_path.pairs import PairFailed, Summary

HEALTH_PATH = "/healthz"
ALLOCATE_PATH = "/scheduler/devices/allocate"
RELEASE_PATH = "/scheduler/devices/release"
ALLOCATE_BODY = {"durationMinutes": 30}
TIMEOUT_S = 30.0


class HttpWorker:
    """One client: a single kept-alive connection and one user token."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def pair(self) -> tuple[float, float]:
        started = time.perf_counter()
        granted = await self._client.post(ALLOCATE_PATH, json=ALLOCATE_BODY)
        allocated = time.perf_counter()
        if granted.status_code != 201:
            raise PairFailed(f"allocate: HTTP {granted.status_code} {granted.text[:200]}")
        body = {"allocationId": granted.json()["allocationId"]}
        released = await self._client.post(RELEASE_PATH, json=body)
        done = time.perf_counter()
        if released.status_code != 200:
            raise PairFailed(f"release: HTTP {released.status_code} {released.text[:200]}")
        return allocated - started, done - started


@contextlib.asynccontextmanager
async def http_workers(base_url: str, tokens: Sequence[str]) -> AsyncIterator[list[HttpWorker]]:
    """One worker per token, its client closed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        workers = []
        for token in tokens:
            client = httpx.AsyncClient(
                base_url=base_url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=TIMEOUT_S,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
            workers.append(HttpWorker(await stack.enter_async_context(client)))
        yield workers


async def probe_health(base_url: str, count: int, warmup: int) -> Summary:
    """Sequential ``GET /healthz`` (no auth, no database): the HTTP round trip alone."""
    times = []
    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_S) as client:
        for index in range(warmup + count):
            started = time.perf_counter()
            response = await client.get(HEALTH_PATH)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"GET {HEALTH_PATH}: HTTP {response.status_code}")
            if index >= warmup:
                times.append(elapsed)
    return Summary.of(times)
