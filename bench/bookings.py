"""Bookings start on time: activation lateness over hundreds of reservations.

    python -m bench.bookings --reservations 300 --spread-seconds 30

Books ``--reservations`` devices for windows starting over the next ``--spread-seconds``
(after a short lead), with a pre-warm of 1 s, then runs the real ``Housekeeper`` loop (its
own timer: sleep until the next lease, deadline or booking is due) in this process against
the real database until every booking started. Lateness is the lease's start minus the
booking's start, both as committed. With ``--batch`` it also compares one
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import timedelta

import httpx
import psycopg

from bench.scratch import REDIS_URL, auth, scratch_database, seed_pool
from scheduler.bootstrap import build_services
from scheduler.config import Settings
from scheduler.services.housekeeping import Housekeeper, HousekeeperConfig
from scheduler.services.tenancy import ensure_admin_token
from serve.app import create_app


async def lateness(settings: Settings, reservations: int, spread: float) -> list[float]:
    services = build_services(settings)
    admin = "pf_bench_" + uuid.uuid4().hex
    await ensure_admin_token(services.uow(), admin, now=services.clock())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(services)), base_url="http://bench"
    ) as client:
        pool = await seed_pool(client, admin, reservations)
        token, label = pool.token, pool.label
        first = services.clock() + timedelta(seconds=5)
        ids = []
        for i in range(reservations):
            start = first + timedelta(seconds=spread * i / reservations)
            r = await client.post(
                "/scheduler/reservations",
                headers=auth(token),
                json={
                    "startTime": start.isoformat(),
                    "durationMinutes": 15,
                    "preferredSpecs": {"labels": label},
                    "remindBeforeMinutes": 0,
                },
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        keeper = Housekeeper(
            services.uow,
            services.events,
            services.lifecycle,
            services.queue,
            HousekeeperConfig(relay_seconds=0.2, max_sleep_seconds=1.0, retention_seconds=3600),
            "bench",
        )
        deadline = time.monotonic() + spread + 30
        while time.monotonic() < deadline:
            await keeper.tick(services.clock())
            if keeper.activated_total >= reservations:
                break
            await asyncio.sleep(keeper.seconds_until_next(services.clock()))
    await services.close()
    with psycopg.connect(str(settings.database_url).replace("+psycopg", "")) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM a.allocated_at - r.start_time) * 1000 FROM reservations r"
            " JOIN allocations a ON a.id = r.allocation_id WHERE r.id = ANY(%s::uuid[])",
            (ids,),
        ).fetchall()
    return sorted(float(r[0]) for r in rows)


async def batch_vs_singles(settings: Settings, size: int) -> tuple[float, float]:
    """Wall time of ``size`` single allocate calls, then of one batch of ``size`` (in-process
    over ASGI, so only the service and the database differ)."""
    services = build_services(settings)
    admin = "pf_bench_" + uuid.uuid4().hex
    await ensure_admin_token(services.uow(), admin, now=services.clock())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(services)),
        base_url="http://bench",
        timeout=120,
    ) as client:
        pool = await seed_pool(client, admin, 2 * size)
        token, body = pool.token, pool.body()
        started = time.perf_counter()
        for _ in range(size):
            r = await client.post("/scheduler/devices/allocate", headers=auth(token), json=body)
            assert r.status_code == 201, r.text
        singles = time.perf_counter() - started
        started = time.perf_counter()
        r = await client.post(
            "/scheduler/allocations/batch", headers=auth(token), json={"requests": [body] * size}
        )
        batch = time.perf_counter() - started
        assert r.status_code == 200 and r.json()["granted"] == size, r.text
    await services.close()
    return singles, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reservations", type=int, default=300)
    parser.add_argument("--spread-seconds", type=float, default=30.0)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    with scratch_database("pf_bench_bookings") as (database_url, name):
        settings = Settings(
            database_url=database_url,
            redis_url=REDIS_URL,
            device_reset_seconds=0.05,
            prewarm_seconds=1.0,
            events_stream=f"phonefleet:bench:{name}",
            token_cache_seconds=60,
            rate_limit_rps=100_000.0,
            rate_limit_burst=100_000,
        )
        late = asyncio.run(lateness(settings, args.reservations, args.spread_seconds))
        singles, batch = asyncio.run(batch_vs_singles(settings, args.batch_size))
    print(
        f"activation lateness over {len(late)} of {args.reservations} bookings "
        f"(starts spread over {args.spread_seconds:.0f} s):"
    )
    print(
        f"  p50 {statistics.median(late):.1f} ms   p99 {late[int(0.99 * (len(late) - 1))]:.1f} ms"
        f"   max {late[-1]:.1f} ms   min {late[0]:.1f} ms"
    )
    print(
        f"{args.batch_size} allocations: {args.batch_size} single calls {singles * 1000:.0f} ms,"
        f" one batch {batch * 1000:.0f} ms (batch / singles = {batch / singles:.2f})"
    )


if __name__ == "__main__":
    main()
