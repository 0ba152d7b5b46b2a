"""Freed device → waiting entry granted: how fast the event-driven queue reacts.

    python -m bench.queue_latency --waiters 200 --devices 20          # in-process drains
    python -m bench.queue_latency --waiters 200 --devices 20 --serve  # Ray: NodeActors + QueueActor

A pool of devices is fully leased and a crowd of entries waits for it. Leases are released
one at a time; each device is reset (``PHONEFLEET_DEVICE_RESET_SECONDS``), becomes available
(outbox ``device.ready``), the node agent wakes the queue, and a drain grants it to the next
waiter (outbox ``queue.fulfilled``). The latency of each hand-over is the time between those
two events of the same device, both stamped by the process that committed them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from bench.scratch import REDIS_URL, auth, scratch_database, seed_pool
from scheduler.bootstrap import build_services
from scheduler.config import Settings
from scheduler.services.tenancy import ensure_admin_token
from serve.app import create_app


async def scenario(client: httpx.AsyncClient, admin: str, waiters: int, devices: int) -> str:
    """Lease every device, queue the crowd, then release the leases one by one: the node id."""
    pool = await seed_pool(client, admin, devices)
    token, label = pool.token, pool.label
    body = {"durationMinutes": 30, "preferredSpecs": {"labels": label}}
    leases = [
        (await client.post("/scheduler/devices/allocate", headers=auth(token), json=body)).json()
        for _ in range(devices)
    ]
    for _ in range(waiters):
        r = await client.post(
            "/scheduler/queue/join", headers=auth(token), json={**body, "maxWaitMinutes": 120}
        )
        assert r.status_code == 201, r.text
    pending = list(leases)
    while pending:
        lease = pending.pop(0)
        await client.post(
            "/scheduler/devices/release",
            headers=auth(token),
            json={"allocationId": lease["allocationId"]},
        )
        await asyncio.sleep(0.05)
        if not pending:
            break
    return pool.node_id


def hand_over_latencies(database_url: str, node_id: str) -> list[float]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT r.occurred_at AS ready, min(f.occurred_at) AS granted"
            " FROM outbox_events r JOIN outbox_events f"
            "  ON f.type = 'queue.fulfilled' AND f.payload->>'deviceId' = r.payload->>'deviceId'"
            "  AND f.occurred_at >= r.occurred_at"
            " WHERE r.type = 'device.ready' AND r.payload->>'nodeId' = %s GROUP BY r.seq, r.occurred_at",
            (node_id,),
        ).fetchall()
    return [(granted - ready).total_seconds() * 1000 for ready, granted in rows]


async def run_in_process(settings: Settings, waiters: int, devices: int) -> str:
    services = build_services(settings)
    admin = "pf_bench_" + uuid.uuid4().hex
    await ensure_admin_token(services.uow(), admin, now=services.clock())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(services)), base_url="http://bench"
    ) as client:
        node_id = await scenario(client, admin, waiters, devices)
        await asyncio.sleep(1.0 + settings.device_reset_seconds * 2)
        await services.lifecycle.drain()  # type: ignore[attr-defined]
        await services.queue.idle()  # type: ignore[attr-defined]
    await services.close()
    return node_id


async def run_on_serve(settings: Settings, waiters: int, devices: int) -> str:
    from actors.housekeeper import ensure_housekeeper
    from bench.request_path.servers import phonefleet_env
    from scheduler.cli.bring_up import app_args
    from scheduler.cli.cluster_ports import ClusterPorts
    from scheduler.cli.ray_head import start_head
    from scheduler.cli.ray_nodes import stop_ray_node
    from scheduler.cli.serve_app import APP_IMPORT_PATH, deploy_app

    data_dir = Path(tempfile.mkdtemp(prefix="pf-bench-queue-"))
    ports = ClusterPorts.from_http_port(8900)
    admin = "pf_bench_" + uuid.uuid4().hex
    services = build_services(settings)
    await ensure_admin_token(services.uow(), admin, now=services.clock())
    await services.close()
    head = start_head(data_dir, ports, phonefleet_env(settings))
    try:
        url = deploy_app(head.address, ports, APP_IMPORT_PATH, app_args(settings))
        ensure_housekeeper(settings)
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            node_id = await scenario(client, admin, waiters, devices)
        time.sleep(3.0 + settings.device_reset_seconds * 2)
        return node_id
    finally:
        import ray

        ray.shutdown()  # disconnect this driver before its cluster goes away
        stop_ray_node(data_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiters", type=int, default=200)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--reset-seconds", type=float, default=0.05)
    parser.add_argument("--serve", action="store_true", help="over Ray (NodeActors, QueueActor)")
    args = parser.parse_args()
    with scratch_database("pf_bench_queue") as (database_url, name):
        settings = Settings(
            database_url=database_url,
            redis_url=REDIS_URL,
            device_reset_seconds=args.reset_seconds,
            events_stream=f"phonefleet:bench:{name}",
            queue_cap_per_tenant=10_000,
            token_cache_seconds=60,
            node_reconcile_seconds=1,
            rate_limit_rps=100_000.0,
            rate_limit_burst=100_000,
        )
        runner = run_on_serve if args.serve else run_in_process
        node_id = asyncio.run(runner(settings, args.waiters, args.devices))
        latencies = sorted(hand_over_latencies(database_url, node_id))
    mode = "Ray (NodeActor → QueueActor)" if args.serve else "in-process drains"
    print(f"freed device → waiter granted, {mode}, {len(latencies)} hand-overs:")
    print(
        f"  p50 {statistics.median(latencies):.1f} ms   p99 {latencies[int(0.99 * (len(latencies) - 1))]:.1f} ms"
        f"   max {latencies[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
