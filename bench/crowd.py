"""A crowd watching the queue: what 100 waiters cost everyone else, polling and long-polling.

    python -m bench.crowd                  # the app on Ray Serve (a head of its own)
    python -m bench.crowd --uvicorn        # the same app under plain uvicorn

A fresh database; one tenant's pool of one leased device with ``--waiters`` entries queued
for it; another tenant's pool of its own on which a client allocates and releases, one pair
after another, measuring allocate latency

1. ``idle``: with nobody watching;
2. ``polling``: while every waiter polls ``GET /scheduler/queue/{id}`` every ``--interval``
   seconds (poll latency and answers per second are measured too), driven by ``wrk``
   (``apt install wrk``): a Python client cannot poll 2,000 times a second on 2 cores;
3. ``long-polling``: while every waiter long-polls the same with ``waitSeconds=25``;

then ``--handovers`` times the crowd's device is freed (its lease released) and the time
until the long-poller it was granted to hears of it is measured ("freed → told"). The crowds
run in processes of their own (wrk; a Python process for the long-polls), so their client
work is not charged to the measuring client; all share the machine with the server, as in a
one-host deployment.
Devices reset in 0 s here: the hand-over measures the scheduler, not a phone's reset.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import subprocess
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
    parser.add_argument(
        "--poll-seconds", type=float, default=15, help="length of the polling phase"
    )
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

#: wrk's script: every connection is one waiter, polling its own entry, then pausing.
WRK_SCRIPT = """
ids = {%(ids)s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/scheduler/queue/" .. ids[(counter %% #ids) + 1],
                    {["Authorization"] = "Bearer %(token)s"})
end
delay = function() return %(pause_ms)d end
"""


@dataclass
class CrowdOrders:
    url: str
    token: str
    entry_ids: list[str]
    interval: float
    seconds: float


@contextlib.contextmanager
def polling_crowd(orders: CrowdOrders, work_dir: Path) -> Iterator[dict[str, Any]]:
    """``len(entry_ids)`` waiters polling every ``interval`` for ``seconds``, driven by wrk (a
    C load generator: a Python client cannot poll 2,000 times a second on these cores)."""
    script = work_dir / "crowd.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "ids": ", ".join(f'"{i}"' for i in orders.entry_ids),
            "token": orders.token,
            "pause_ms": round(orders.interval * 1000),
        }
    )
    command = [
        "wrk",
        "-t1",
        f"-c{len(orders.entry_ids)}",
        f"-d{round(orders.seconds)}s",
        "--latency",
        "-s",
        str(script),
        orders.url,
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    report: dict[str, Any] = {}
    try:
        time.sleep(1.0)  # every waiter connected and in its rhythm
        yield report
    finally:
        output, _ = process.communicate(timeout=orders.seconds + 30)
        report.update(parse_wrk(output))


def parse_wrk(output: str) -> dict[str, Any]:
    """wrk's latency percentiles (ms) and request rate."""
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    figures: dict[str, Any] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            value = parts[1]
            unit = next(u for u in ("us", "ms", "s") if value.endswith(u))
            figures[f"p{parts[0][:-1]}_ms"] = round(float(value[: -len(unit)]) * units[unit], 2)
        if line.startswith("Requests/sec:"):
            figures["answers_per_second"] = float(parts[1])
        if "Non-2xx" in line:
            figures["non_2xx"] = int(parts[-1])
    return figures


def long_poll_process(orders: CrowdOrders, stop: Any) -> None:
    """Run in a process of its own: every waiter long-polls its entry until told to stop."""

    async def watch(client: httpx.AsyncClient, entry_id: str) -> None:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                await client.get(
                    f"/scheduler/queue/{entry_id}",
                    headers=auth(orders.token),
                    params={"waitSeconds": 25},
                )

    async def main() -> None:
        limits = httpx.Limits(max_connections=len(orders.entry_ids) + 10)
        async with httpx.AsyncClient(base_url=orders.url, timeout=60, limits=limits) as client:
            tasks = [asyncio.create_task(watch(client, e)) for e in orders.entry_ids]
            while not stop.is_set():
                await asyncio.sleep(0.05)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


@contextlib.contextmanager
def long_polling_crowd(orders: CrowdOrders) -> Iterator[None]:
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    process = context.Process(target=long_poll_process, args=(orders, stop), daemon=True)
    process.start()
    try:
        time.sleep(2.0)  # every long-poll in place
        yield
    finally:
        stop.set()
        process.join(30)


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


def run(args: argparse.Namespace, url: str, work_dir: Path) -> dict[str, Any]:
    scene = asyncio.run(seed(url, args.waiters))
    asyncio.run(allocate_pairs(scene, 30))  # warm-up
    idle = asyncio.run(allocate_pairs(scene, args.pairs))
    orders = CrowdOrders(url, scene.crowd_token, scene.entries, args.interval, args.poll_seconds)
    with polling_crowd(orders, work_dir) as polled:
        deadline = time.monotonic() + args.poll_seconds - 3
        polling: list[float] = []
        while time.monotonic() < deadline and len(polling) < args.pairs:
            polling += asyncio.run(allocate_pairs(scene, 10))
    with long_polling_crowd(orders):
        long_polling = asyncio.run(allocate_pairs(scene, args.pairs))
    return {
        "idle": {"allocate": ms(idle)},
        "poll": {"allocate": ms(polling), "watch": polled},
        "long-poll": {"allocate": ms(long_polling)},
        "freed_to_told": ms(asyncio.run(handovers(scene, args.handovers))),
    }


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
        # the crowd shares one token: measure what polling costs, not how the limit refuses it
        "rate_limit_rps": 100_000.0,
        "rate_limit_burst": 100_000,
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
            figures = run(args, url, Path(tmp))
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
        f" {polling['watch']['answers_per_second']} answers/s;"
        f" freed → long-poller told p50/p99 ms {figures['freed_to_told']['p50_ms']}/"
        f"{figures['freed_to_told']['p99_ms']}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
