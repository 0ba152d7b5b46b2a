"""A crowd watching the queue: what 100 waiters cost everyone else, polling and long-polling.

    python -m bench.crowd                  # the app on Ray Serve (a head of its own)
    python -m bench.crowd --uvicorn        # the same app under plain uvicorn

A fresh database; one tenant's pool of one leased device with ``--waiters`` entries queued
for it; another tenant's pool of its own on which a client allocates and releases, one pair
after another, measuring allocate latency

1. ``idle``: with nobody watching;
2. ``polling``: while every waiter polls ``GET /scheduler/queue/{id}`` every ``--interval``
   seconds (poll latency and answers per second are measured too);
3. ``long-polling``: while every waiter long-polls the same with ``waitSeconds=25``;

then ``--handovers`` times the crowd's device is freed (its lease released) and the time
until the long-poller it was granted to hears of it is measured ("freed → told"). The crowd
runs in a process of its own (``multiprocessing``), so its client work is not charged to the
measuring client; both share the machine with the server, as in a real one-host deployment.
Devices reset in 0 s here: the hand-over measures the scheduler, not a phone's reset.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.request_path.servers import serve_app, uvicorn_app
from bench.scratch import REDIS_URL, auth, scratch_database, seed_pool
from scheduler.bootstrap import build_services
from scheduler.config import Settings
from scheduler.services.tenancy import ensure_admin_token

ADMIN = "pf_bench_crowd_admin"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.crowd", description=__doc__)
    parser.add_argument("--waiters", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between polls")
    parser.add_argument("--pairs", type=int, default=300, help="allocate+release pairs per phase")
    parser.add_argument("--handovers", type=int, default=30)
    parser.add_argument("--uvicorn", action="store_true", help="plain uvicorn instead of Serve")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser.parse_args()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(pct(values, 0.50) * 1000, 2),
        "p99_ms": round(pct(values, 0.99) * 1000, 2),
        "n": len(values),
    }


# --------------------------------------------------------------------------- the crowd


@dataclass
class CrowdOrders:
    url: str
    token: str
    entry_ids: list[str]
    interval: float
    mode: str  # "poll" or "long-poll"


def crowd_process(orders: CrowdOrders, stop: Any, results: Any) -> None:
    """Run in a process of its own: every waiter watches its entry until told to stop."""
    latencies: list[float] = []
    answers = 0

    async def watch(client: httpx.AsyncClient, entry_id: str) -> None:
        nonlocal answers
        params = {"waitSeconds": 25} if orders.mode == "long-poll" else {}
        while not stop.is_set():
            started = time.monotonic()
            try:
                r = await client.get(
                    f"/scheduler/queue/{entry_id}", headers=auth(orders.token), params=params
                )
            except httpx.HTTPError:
                continue
            latencies.append(time.monotonic() - started)
            answers += 1
            if r.json().get("status") != "waiting":
                return
            if orders.mode == "poll":
                await asyncio.sleep(orders.interval)

    async def main() -> None:
        limits = httpx.Limits(max_connections=len(orders.entry_ids) + 10)
        async with httpx.AsyncClient(base_url=orders.url, timeout=60, limits=limits) as client:
            started = time.monotonic()
            tasks = [asyncio.create_task(watch(client, e)) for e in orders.entry_ids]
            while not stop.is_set():
                await asyncio.sleep(0.05)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            results.put(
                {"latencies": latencies, "answers": answers, "seconds": time.monotonic() - started}
            )

    asyncio.run(main())


@contextlib.contextmanager
def crowd(orders: CrowdOrders) -> Iterator[dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    process = context.Process(target=crowd_process, args=(orders, stop, results), daemon=True)
    process.start()
    report: dict[str, Any] = {}
    try:
        time.sleep(1.0)  # every watcher connected and in its rhythm
        yield report
    finally:
        stop.set()
        report.update(results.get(timeout=60))
        process.join(10)


# --------------------------------------------------------------------------- measuring


@dataclass
class Scene:
    url: str
    victim_token: str
    victim_body: dict[str, Any]
    crowd_token: str
    crowd_body: dict[str, Any]
    holder_lease: str
    entries: list[str] = field(default_factory=list)


async def allocate_pairs(scene: Scene, pairs: int) -> list[float]:
    """Allocate then release, one pair after another; the allocate latencies."""
    latencies = []
    async with httpx.AsyncClient(base_url=scene.url, timeout=30) as client:
        for _ in range(pairs):
            started = time.monotonic()
            r = await client.post(
                "/scheduler/devices/allocate",
                headers=auth(scene.victim_token),
                json=scene.victim_body,
            )
            latencies.append(time.monotonic() - started)
            assert r.status_code == 201, r.text
            await client.post(
                "/scheduler/devices/release",
                headers=auth(scene.victim_token),
                json={"allocationId": r.json()["allocationId"]},
            )
    return latencies


async def handovers(scene: Scene, count: int) -> list[float]:
    """Free the crowd's device ``count`` times; each time, how long until the long-poller it
    went to hears of it (that long-poll's answer)."""
    told: list[float] = []
    lease = scene.holder_lease
    limits = httpx.Limits(max_connections=len(scene.entries) + 10)
    async with httpx.AsyncClient(base_url=scene.url, timeout=60, limits=limits) as client:
        heard: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()

        async def long_poll(entry_id: str) -> None:
            while True:
                r = await client.get(
                    f"/scheduler/queue/{entry_id}",
                    headers=auth(scene.crowd_token),
                    params={"waitSeconds": 25},
                )
                if r.json()["status"] != "waiting":
                    await heard.put((time.monotonic(), r.json()))
                    return

        pollers = [asyncio.create_task(long_poll(e)) for e in scene.entries]
        await asyncio.sleep(1.0)
        for _ in range(min(count, len(scene.entries))):
            freed_at = time.monotonic()
            r = await client.post(
                "/scheduler/devices/release",
                headers=auth(scene.crowd_token),
                json={"allocationId": lease},
            )
            assert r.status_code == 200, r.text
            at, entry = await asyncio.wait_for(heard.get(), timeout=30)
            told.append(at - freed_at)
            lease = entry["allocationId"]
        for task in pollers:
            task.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)
    return told


async def seed(url: str, waiters: int) -> Scene:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        victim = await seed_pool(client, ADMIN, 4)
        crowd_pool = await seed_pool(client, ADMIN, 1)
        lease = await client.post(
            "/scheduler/devices/allocate", headers=auth(crowd_pool.token), json=crowd_pool.body()
        )
        assert lease.status_code == 201, lease.text
        scene = Scene(
            url,
            victim.token,
            victim.body(),
            crowd_pool.token,
            crowd_pool.body(maxWaitMinutes=120),
            lease.json()["allocationId"],
        )
        for _ in range(waiters):
            r = await client.post(
                "/scheduler/queue/join", headers=auth(scene.crowd_token), json=scene.crowd_body
            )
            assert r.status_code == 201, r.text
            scene.entries.append(r.json()["id"])
    return scene


def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    scene = asyncio.run(seed(url, args.waiters))
    asyncio.run(allocate_pairs(scene, 30))  # warm-up
    figures: dict[str, Any] = {
        "idle": {"allocate": ms(asyncio.run(allocate_pairs(scene, args.pairs)))}
    }
    for mode in ("poll", "long-poll"):
        orders = CrowdOrders(url, scene.crowd_token, scene.entries, args.interval, mode)
        with crowd(orders) as watched:
            allocate = asyncio.run(allocate_pairs(scene, args.pairs))
        figures[mode] = {
            "allocate": ms(allocate),
            "watch": ms(watched["latencies"])
            if mode == "poll"
            else {"answers": watched["answers"]},
            "answers_per_second": round(watched["answers"] / watched["seconds"], 1),
        }
    figures["freed_to_told"] = ms(asyncio.run(handovers(scene, args.handovers)))
    return figures


async def make_admin(settings: Settings) -> None:
    services = build_services(settings)
    await ensure_admin_token(services.uow(), ADMIN, now=services.clock())
    await services.close()


def main() -> None:
    args = parse_args()
    settings_kw: dict[str, Any] = {
        "redis_url": REDIS_URL,
        "admin_token": ADMIN,
        "device_reset_seconds": 0.0,
        "queue_cap_per_tenant": max(100, args.waiters + 10),
        "token_cache_seconds": 60.0,
    }
    with scratch_database("bench_crowd") as (db_url, _), tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=db_url, **settings_kw)
        asyncio.run(make_admin(settings))
        server = (
            uvicorn_app(settings, args.port, Path(tmp) / "uvicorn.log")
            if args.uvicorn
            else serve_app(settings, Path(tmp), args.port)
        )
        with server as url:
            figures = run(args, url)
    figures["server"] = "uvicorn" if args.uvicorn else "serve"
    figures["waiters"], figures["interval_s"] = args.waiters, args.interval
    idle, polling, long_polling = figures["idle"], figures["poll"], figures["long-poll"]
    print(json.dumps(figures, indent=2))
    print(
        f"\nallocate p50/p99 ms: idle {idle['allocate']['p50_ms']}/{idle['allocate']['p99_ms']},"
        f" {args.waiters} polling {polling['allocate']['p50_ms']}/{polling['allocate']['p99_ms']}"
        f" ({polling['allocate']['p99_ms'] / idle['allocate']['p99_ms']:.2f}x idle p99),"
        f" long-polling {long_polling['allocate']['p50_ms']}/{long_polling['allocate']['p99_ms']}"
        f" ({long_polling['allocate']['p99_ms'] / idle['allocate']['p99_ms']:.2f}x)"
    )
    print(
        f"poll p50/p99 ms {polling['watch']['p50_ms']}/{polling['watch']['p99_ms']},"
        f" {polling['answers_per_second']} answers/s;"
        f" freed → long-poller told p50/p99 ms {figures['freed_to_told']['p50_ms']}/"
        f"{figures['freed_to_told']['p99_ms']}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
