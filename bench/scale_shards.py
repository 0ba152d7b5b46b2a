"""The big fleet of ``bench.scale`` served by a few NodeActors (``PHONEFLEET_NODE_ACTOR_SHARDS``)
on a Ray head of its own: what their heartbeats and reconciles cost the machine.

The shard actors are created as the API creates them (``node_actor_handle``); each adopts
the nodes that hash to it from the database, heartbeats them every ``HEARTBEAT_SECONDS`` (one
``UPDATE`` per shard) and reconciles them. Measured over ``seconds`` once every node is
served: the CPU time of the NodeActor processes and of every PostgreSQL process (nothing else
runs; ``bench.request_path.cpu`` groups them), as a share of one core.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from actors.names import node_actor_name
from bench.request_path.cpu import CpuMeter
from scheduler.cli.cluster_ports import ClusterPorts
from scheduler.config import Settings

HEARTBEAT_SECONDS = 5.0
SERVED_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class ShardFigures:
    shards: int
    nodes_served: int
    seconds: float
    actors_core_pct: float
    postgres_core_pct: float

    @property
    def total_core_pct(self) -> float:
        return self.actors_core_pct + self.postgres_core_pct


def measure_shards(
    url: str, redis_url: str, shards: int, seconds: float, data_dir: Path, ports: ClusterPorts
) -> ShardFigures:
    import ray

    from actors.node_actor import node_actor_handle
    from actors.ray_client import connect
    from scheduler.cli.ray_head import start_head
    from scheduler.cli.ray_nodes import stop_ray_node

    settings = Settings(
        database_url=url,
        redis_url=redis_url,
        events_stream=f"phonefleet:bench:{uuid.uuid4().hex[:12]}:events",
        node_actor_shards=shards,
        heartbeat_seconds=HEARTBEAT_SECONDS,
        node_reconcile_seconds=HEARTBEAT_SECONDS,
        device_reset_seconds=0.0,
    )
    with psycopg.connect(url) as conn:
        node_ids = [row[0] for row in conn.execute("SELECT id FROM nodes").fetchall()]
    one_per_shard = {node_actor_name(n, shards): n for n in node_ids}
    head = start_head(data_dir, ports)
    try:
        connect(head.address)
        actors = [node_actor_handle(settings, n) for n in one_per_shard.values()]
        served = _wait_served(actors, len(node_ids))
        meter = CpuMeter()
        meter.start()
        started = time.monotonic()
        time.sleep(seconds)
        spent = meter.stop().by_group
        wall = time.monotonic() - started
        return ShardFigures(
            len(actors),
            served,
            wall,
            spent.get("NodeActor", 0.0) / wall * 100,
            spent.get("postgres", 0.0) / wall * 100,
        )
    finally:
        ray.shutdown()
        stop_ray_node(data_dir)


def _wait_served(actors: list[Any], nodes: int) -> int:
    import ray

    deadline = time.monotonic() + SERVED_TIMEOUT_S
    while True:
        served = sum(len(ids) for ids in ray.get([a.node_ids.remote() for a in actors]))
        if served >= nodes or time.monotonic() > deadline:
            return served
        time.sleep(0.5)
