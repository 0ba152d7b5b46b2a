"""Scale: the same requests on a small fleet and on a big one, in one run.

    python -m bench.scale --requests 30                     # 40×10 against 10,000×10, 1,000 waiters
    python -m bench.scale --nodes 2000 --markdown /tmp/scale.md --json /tmp/scale.json

Each fleet gets a fresh database (migrated from empty) whose nodes and devices are written
by SQL in bulk (registering 10,000 nodes through the API is not what is measured; every
device is ``available``, five ``region`` labels spread over the nodes); a tenant and a user
token come through the API. The app runs in this process (httpx over ASGI, no HTTP server,
no Ray: one in-process node agent serves every node), devices reset in no time. Measured,
in this order: ``GET /scheduler/devices/available?limit=50`` (as polled: the fleet's total
remembered for a second; then with each call counting it); allocate (then its release,
not timed) as deployed — alike requests rank the candidate read this process kept for a
second (p50, and p99: the call that reads) — and with every allocate reading the fleet
(``candidate_reuse_seconds=0``); a drain of ``--waiters`` queue entries (written by SQL, then one drain
timed);
one heartbeat of every node (one ``UPDATE`` for all of them, as a node agent sends it).
Then, with ``--shards`` (default 4), the big fleet is served by that many NodeActors on a Ray
head of the bench's own (``bench.scale_shards``), and what they cost is measured.
Figures are p50 of ``--requests`` calls (the drain: one run; the heartbeat: p50 of 5).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb
from rich.console import Console
from rich.table import Table

from bench.request_path.database import forget_stream, fresh_database, servers
from bench.scale_shards import ShardFigures, measure_shards
from scheduler.adapters.sql_queue import requirements_to_json
from scheduler.bootstrap import build_services
from scheduler.cli.cluster_ports import ClusterPorts
from scheduler.config import Settings
from scheduler.domain.resources import DeviceRequirements
from scheduler.services.queue_dispatch import QueueDrainer
from scheduler.services.tenancy import ensure_admin_token
from serve.app import create_app

PORTS = ClusterPorts.from_http_port(8880)
HEARTBEAT_SECONDS = 5.0
REGIONS = 5


@dataclass(frozen=True)
class FleetFigures:
    nodes: int
    devices: int
    available_p50_ms: float
    available_counted_p50_ms: float
    allocate_p50_ms: float
    allocate_p99_ms: float
    allocate_each_read_p50_ms: float  # with PHONEFLEET_CANDIDATE_REUSE_SECONDS=0
    drain_ms: float
    drained: int
    heartbeat_ms: float

    @property
    def heartbeat_core_pct(self) -> float:
        """One heartbeat of every node each ``HEARTBEAT_SECONDS``, as a share of one core."""
        return self.heartbeat_ms / (HEARTBEAT_SECONDS * 1000) * 100


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--nodes", type=int, default=10_000, help="nodes of the big fleet")
    parser.add_argument("--small-nodes", type=int, default=40, help="nodes of the small fleet")
    parser.add_argument("--devices-per-node", type=int, default=10)
    parser.add_argument("--requests", type=int, default=30, help="calls per figure")
    parser.add_argument("--waiters", type=int, default=1000, help="queue entries to drain")
    parser.add_argument(
        "--shards", type=int, default=4, help="NodeActors serving the big fleet (0: skip)"
    )
    parser.add_argument(
        "--shard-seconds", type=float, default=20.0, help="how long their cost is measured"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    if min(args.nodes, args.small_nodes, args.devices_per_node, args.requests) < 1:
        parser.error("every count must be at least 1")
    return args


def seed(url: str, nodes: int, per_node: int) -> None:
    """Nodes (ready, heard from now) and their available devices, written in bulk."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO nodes (id, name, cpu_cores, memory_mb, storage_mb, max_devices, labels,"
            " taints, status, host, created_at, last_heartbeat_at) SELECT gen_random_uuid(),"
            " 'node-' || i, 64, 262144, 4194304, %(per)s, jsonb_build_object('region',"
            " 'r' || (i %% %(regions)s)), '[]', 'ready', 'host-' || i, now(), now()"
            " FROM generate_series(1, %(nodes)s) i",
            {"nodes": nodes, "per": per_node, "regions": REGIONS},
        )
        conn.execute(
            "INSERT INTO devices (id, node_id, name, status, cpu_cores, memory_mb, storage_mb,"
            " android_version, labels, adb_host, adb_port, created_at, status_changed_at)"
            " SELECT gen_random_uuid(), n.id, n.name || '-' || j, 'available', 2, 4096, 32768,"
            " '13', '{}', n.host, 20000 + j, now(), now()"
            " FROM nodes n, generate_series(1, %(per)s) j",
            {"per": per_node},
        )
        conn.execute("ANALYZE")


async def _timings(calls: int, call: Callable[[], Awaitable[None]]) -> list[float]:
    """Milliseconds of ``calls`` calls, one after the other."""
    taken = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        taken.append((time.perf_counter() - started) * 1000)
    return taken


async def _p50(calls: int, call: Callable[[], Awaitable[None]]) -> float:
    return statistics.median(await _timings(calls, call))


def _p99(taken: list[float]) -> float:
    return statistics.quantiles(taken, n=100, method="inclusive")[98]


async def measure(url: str, redis_url: str, nodes: int, args: argparse.Namespace) -> FleetFigures:
    seed(url, nodes, args.devices_per_node)
    settings = Settings(
        database_url=url,
        redis_url=redis_url,
        events_stream=f"phonefleet:bench:{uuid.uuid4().hex[:12]}:events",
        device_reset_seconds=0.0,
        token_cache_seconds=86_400.0,
        rate_limit_rps=1_000_000.0,
        rate_limit_burst=1_000_000,
        queue_cap_per_tenant=args.waiters,
        queue_cap_total=args.waiters,
    )
    services = build_services(settings)
    each_read = build_services(settings.model_copy(update={"candidate_reuse_seconds": 0.0}))
    admin = "pf_bench_" + uuid.uuid4().hex
    await ensure_admin_token(services.uow(), admin, now=services.clock())
    transport = httpx.ASGITransport(app=create_app(services))
    each_read_transport = httpx.ASGITransport(app=create_app(each_read))
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
            httpx.AsyncClient(transport=each_read_transport, base_url="http://bench") as reading,
        ):
            api = _Api(client, admin)
            token, tenant = await api.user_token()
            user = {"Authorization": f"Bearer {token}"}

            async def available() -> None:
                r = await client.get("/scheduler/devices/available?limit=50", headers=user)
                assert r.status_code == 200, r.text

            async def available_counted() -> None:
                services.available_total.forget()  # this call counts
                await available()

            def allocate_on(api: httpx.AsyncClient) -> Callable[[], Awaitable[None]]:
                async def allocate() -> None:
                    r = await api.post(
                        "/scheduler/devices/allocate", headers=user, json={"durationMinutes": 30}
                    )
                    assert r.status_code == 201, r.text
                    released.append(r.json()["allocationId"])

                return allocate

            released: list[str] = []
            available_ms = await _p50(args.requests, available)
            counted_ms = await _p50(args.requests, available_counted)
            allocate_ms = await _timings(args.requests, allocate_on(client))
            each_read_ms = await _p50(args.requests, allocate_on(reading))
            for allocation_id in released:
                await client.post(
                    "/scheduler/devices/release", headers=user, json={"allocationId": allocation_id}
                )
            drain_ms, drained = await _drain(url, services.queue, tenant, args.waiters)
        agent = services.lifecycle.agent  # type: ignore[attr-defined]
        async with services.uow() as uow:
            for node in await uow.nodes.list():
                agent.adopt(node.id)
        heartbeat_ms = await _p50(5, agent.heartbeat)
    finally:
        await services.close()
        await each_read.close()
        forget_stream(redis_url, settings.events_stream)
    return FleetFigures(
        nodes,
        nodes * args.devices_per_node,
        available_ms,
        counted_ms,
        statistics.median(allocate_ms),
        _p99(allocate_ms),
        each_read_ms,
        drain_ms,
        drained,
        heartbeat_ms,
    )


async def _drain(url: str, queue: Any, tenant: dict[str, Any], waiters: int) -> tuple[float, int]:
    """``waiters`` entries written by SQL (a join through the API waits for its first view,
    which at this size is what the drain measures anyway), then one drain timed."""
    assert isinstance(queue, QueueDrainer)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO queue_entries (id, tenant_id, user_id, tier, status, duration_minutes,"
            " requirements, submitted_at, deadline_at) SELECT gen_random_uuid(), %(tenant)s,"
            " 'scale', %(tier)s, 'waiting', 30, %(requirements)s,"
            " now() - make_interval(secs => %(n)s - i), now() + interval '1 hour'"
            " FROM generate_series(1, %(n)s) i",
            {
                "tenant": tenant["id"],
                "tier": tenant["tier"],
                "requirements": Jsonb(requirements_to_json(DeviceRequirements())),
                "n": waiters,
            },
        )
    started = time.perf_counter()
    granted = await queue.drain()
    return (time.perf_counter() - started) * 1000, granted


class _Api:
    def __init__(self, client: httpx.AsyncClient, admin: str) -> None:
        self._client = client
        self._admin = {"Authorization": f"Bearer {admin}"}

    async def user_token(self) -> tuple[str, dict[str, Any]]:
        """A user token of a new tenant with room for every device, and that tenant."""
        quota = {"maxDevices": 100_000, "cpuCores": 10**6, "memoryMB": 10**9, "storageMB": 10**11}
        r = await self._client.post(
            "/scheduler/admin/tenants",
            headers=self._admin,
            json={"name": f"scale-{uuid.uuid4().hex[:8]}", "quota": quota},
        )
        assert r.status_code == 201, r.text
        tenant = r.json()
        r = await self._client.post(
            "/scheduler/admin/tokens",
            headers=self._admin,
            json={"tenantId": tenant["id"], "userId": "scale", "role": "user"},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["token"]), tenant


def report(small: FleetFigures, big: FleetFigures, shards: ShardFigures | None) -> list[list[str]]:
    def ratio(a: float, b: float) -> str:
        return f"{b / a:.1f}×" if a else "–"

    served = (
        []
        if shards is None
        else [
            [
                f"{shards.shards} NodeActors serving every node: CPU, share of one core",
                "",
                f"{shards.total_core_pct:.2f} %",
                "",
                "≤ 5 %",
            ],
            [
                "… of it the actors / PostgreSQL",
                "",
                f"{shards.actors_core_pct:.2f} / {shards.postgres_core_pct:.2f} %",
                "",
                "",
            ],
            [
                "… nodes they serve, seconds measured",
                "",
                f"{shards.nodes_served:,}, {shards.seconds:.0f} s",
                "",
                "",
            ],
        ]
    )
    return [
        ["devices (nodes)", f"{small.devices:,} ({small.nodes:,})", f"{big.devices:,} ({big.nodes:,})", "", ""],
        ["`GET …/devices/available` p50", f"{small.available_p50_ms:.1f} ms", f"{big.available_p50_ms:.1f} ms", ratio(small.available_p50_ms, big.available_p50_ms), "≤ 10 ms"],
        ["… each call counting the fleet", f"{small.available_counted_p50_ms:.1f} ms", f"{big.available_counted_p50_ms:.1f} ms", ratio(small.available_counted_p50_ms, big.available_counted_p50_ms), ""],
        ["allocate p50 (in-process)", f"{small.allocate_p50_ms:.1f} ms", f"{big.allocate_p50_ms:.1f} ms", ratio(small.allocate_p50_ms, big.allocate_p50_ms), "≤ 1.5×"],
        ["… p99 (a read kept a second: its refresh)", f"{small.allocate_p99_ms:.1f} ms", f"{big.allocate_p99_ms:.1f} ms", ratio(small.allocate_p99_ms, big.allocate_p99_ms), ""],
        ["… p50, each allocate reading the fleet", f"{small.allocate_each_read_p50_ms:.1f} ms", f"{big.allocate_each_read_p50_ms:.1f} ms", ratio(small.allocate_each_read_p50_ms, big.allocate_each_read_p50_ms), ""],
        ["queue drain (entries granted)", f"{small.drain_ms:,.0f} ms ({small.drained})", f"{big.drain_ms:,.0f} ms ({big.drained})", "", ""],
        ["heartbeat of every node", f"{small.heartbeat_ms:.1f} ms", f"{big.heartbeat_ms:.1f} ms", "", ""],
        ["… share of one core at one per 5 s", f"{small.heartbeat_core_pct:.2f} %", f"{big.heartbeat_core_pct:.2f} %", "", "≤ 5 %"],
        *served,
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    shard_figures = None
    with tempfile.TemporaryDirectory() as work, servers(Path(work), PORTS) as urls:
        figures = []
        for nodes in (args.small_nodes, args.nodes):
            with fresh_database(urls.postgres) as url:
                with console.status(f"{nodes:,} nodes: seeding and measuring…"):
                    figures.append(asyncio.run(measure(url, urls.redis, nodes, args)))
                if nodes == args.nodes and args.shards:
                    with console.status(f"{args.shards} NodeActors serving {nodes:,} nodes…"):
                        shard_figures = measure_shards(
                            url, urls.redis, args.shards, args.shard_seconds, Path(work), PORTS
                        )
    small, big = figures
    rows = report(small, big, shard_figures)
    table = Table("figure", "small fleet", "big fleet", "big ÷ small", "goal (issue 10)")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if args.markdown:
        lines = [
            "| figure | small fleet | big fleet | big ÷ small | goal |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        args.markdown.write_text("\n".join(lines) + "\n")
    if args.json:
        shard_json = asdict(shard_figures) if shard_figures else None
        args.json.write_text(
            json.dumps({"fleets": [asdict(f) for f in figures], "shards": shard_json}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
