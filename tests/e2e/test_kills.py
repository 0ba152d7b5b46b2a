"""Kill tests: a PhoneFleet process gets ``SIGKILL`` in the middle of its work, on the running
fleet. After each: no lease granted twice or lost, one usage record per ended lease, every
outbox event in the stream with its id, every device available or leased, waiters served."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import psycopg
import pytest
import redis

from actors.names import HOUSEKEEPER, NAMESPACE, QUEUE, node_actor_name
from tests.e2e.conftest import Pool, RunningFleet, auth, eventually, plain, seed_pool

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RESTART_SECONDS = 60.0
INGRESS_CLASS = "ServeReplica:phonefleet:PhoneFleetIngress"


@pytest.fixture
def cluster(fleet: RunningFleet) -> Iterator[None]:
    """This test process connected to the fleet's Ray cluster as a driver."""
    import ray

    from actors.ray_client import connect
    from scheduler.cli.ray_head import head_status

    head = head_status(fleet.data_dir)
    assert head is not None
    connect(head.address)
    try:
        yield
    finally:
        ray.shutdown()


def alive_pid(*, name: str | None = None, class_name: str | None = None) -> int | None:
    """The process of the live actor of that name (or class), per Ray's state API."""
    from ray.util.state import list_actors

    filters: list[tuple[str, str, str]] = [("state", "=", "ALIVE")]
    if name:
        filters.append(("name", "=", name))
    if class_name:
        filters.append(("class_name", "=", class_name))
    actors = list_actors(filters=filters, detail=True, raise_on_missing_output=False)
    return int(actors[0].pid) if actors else None


def pid_of(**actor: str) -> int:
    pid = alive_pid(**actor)
    assert pid, f"no live actor {actor}"
    return pid


def kill(pid: int, **actor: str) -> int:
    """``SIGKILL`` the actor's process ``pid``; return its new pid once Ray restarted it."""
    os.kill(pid, signal.SIGKILL)
    return restarted(pid, **actor)


def restarted(pid: int, **actor: str) -> int:
    """The pid of the actor's process once Ray has replaced process ``pid``."""
    return int(
        eventually(
            lambda: p if (p := alive_pid(**actor)) not in (None, pid) else None, RESTART_SECONDS
        )
    )


def sql(fleet: RunningFleet, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(plain(fleet.settings.database_url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def assert_fleet_consistent(fleet: RunningFleet, pool: Pool, since: datetime) -> None:
    """The invariants every kill must leave intact (waiting for the ones that settle)."""
    assert not sql(
        fleet,
        "SELECT device_id FROM allocations WHERE status = 'active'"
        " GROUP BY device_id HAVING count(*) > 1",
    )
    assert not sql(
        fleet,
        "SELECT a.id FROM allocations a LEFT JOIN usage_records u ON u.allocation_id = a.id"
        " WHERE a.tenant_id = %s AND a.status <> 'active' GROUP BY a.id HAVING count(u.id) <> 1",
        uuid.UUID(pool.tenant_id),
    ), "an ended lease without exactly one usage record"
    eventually(
        lambda: (
            not sql(
                fleet,
                "SELECT d.id FROM devices d JOIN nodes n ON n.id = d.node_id"
                " WHERE n.labels @> %s::jsonb AND d.status <> 'available' AND NOT EXISTS ("
                " SELECT 1 FROM allocations a WHERE a.device_id = d.id AND a.status = 'active')",
                psycopg.types.json.Jsonb(pool.label),
            )
        ),
        RESTART_SECONDS,
    )
    stream = redis.Redis.from_url(str(fleet.settings.redis_url), decode_responses=True)

    def undelivered() -> set[str]:
        written = {
            str(row[0])
            for row in sql(
                fleet, "SELECT event_id FROM outbox_events WHERE occurred_at >= %s", since
            )
        }
        delivered = {f["event_id"] for _, f in stream.xrange(fleet.settings.events_stream)}
        return written - delivered

    eventually(lambda: not undelivered(), RESTART_SECONDS)


def now(fleet: RunningFleet) -> datetime:
    return sql(fleet, "SELECT now()")[0][0]


def lease_all(http: httpx.Client, pool: Pool, count: int) -> list[str]:
    body = {"durationMinutes": 30, "preferredSpecs": pool.specs}
    leases = []
    for _ in range(count):
        r = http.post("/scheduler/devices/allocate", headers=auth(pool.token), json=body)
        assert r.status_code == 201, r.text
        leases.append(r.json()["allocationId"])
    return leases


def release_all(http: httpx.Client, pool: Pool, leases: list[str]) -> None:
    r = http.post(
        "/scheduler/allocations/batch/release",
        headers=auth(pool.token),
        json={"allocationIds": leases},
    )
    assert r.status_code == 200, r.text


def test_a_node_actor_killed_mid_reset_takes_its_shard_back_and_finishes_the_resets(
    fleet: RunningFleet, http: httpx.Client, cluster: None
) -> None:
    since = now(fleet)
    pool = seed_pool(http, fleet.admin_token, "kill-node", 6)
    node_id = uuid.UUID(pool.node_id)
    name = node_actor_name(node_id, fleet.settings.node_actor_shards)

    def shard() -> set[str]:
        return {
            str(row[0])
            for row in sql(fleet, "SELECT id FROM nodes")
            if node_actor_name(row[0], fleet.settings.node_actor_shards) == name
        }

    while len(shard()) < 3:  # the actor serves more nodes than the one it was created for
        seed_pool(http, fleet.admin_token, "kill-node-shard", 1)
    leases = lease_all(http, pool, 6)
    pid = pid_of(name=name)
    release_all(http, pool, leases)  # six resets sent to the node actor, 0.2 s each

    os.kill(pid, signal.SIGKILL)
    resetting = sql(
        fleet,
        "SELECT count(*) FROM devices WHERE node_id = %s AND status = 'resetting'",
        node_id,
    )
    assert resetting != [(0,)], "killed while resetting"
    new_pid = restarted(pid, name=name)

    import ray

    actor = ray.get_actor(name, namespace=NAMESPACE)
    adopted = eventually(lambda: set(ray.get(actor.node_ids.remote())) >= shard() or None)
    assert adopted and alive_pid(name=name) == new_pid
    assert_fleet_consistent(fleet, pool, since)


def test_the_housekeeper_killed_mid_tick_expires_each_lease_once_and_loses_no_event(
    fleet: RunningFleet, http: httpx.Client, cluster: None
) -> None:
    since = now(fleet)
    pool = seed_pool(http, fleet.admin_token, "kill-hk", 8)
    leases = lease_all(http, pool, 8)
    pid = pid_of(name=HOUSEKEEPER)
    sql(
        fleet,
        "UPDATE allocations SET allocated_at = allocated_at - interval '1 hour',"
        " expires_at = now() - interval '1 second' WHERE id = ANY(%s::uuid[])",
        leases,
    )

    kill(pid, name=HOUSEKEEPER)  # within the tick that expires them (it ticks every second)

    ended = eventually(
        lambda: (
            rows
            if len(
                rows := sql(
                    fleet,
                    "SELECT id FROM allocations WHERE id = ANY(%s::uuid[]) AND status = 'expired'",
                    leases,
                )
            )
            == 8
            else None
        ),
        RESTART_SECONDS,
    )
    assert len(ended) == 8
    assert_fleet_consistent(fleet, pool, since)


def test_the_queue_actor_killed_mid_drain_serves_every_waiter_once(
    fleet: RunningFleet, http: httpx.Client, cluster: None
) -> None:
    since = now(fleet)
    pool = seed_pool(http, fleet.admin_token, "kill-queue", 3)
    leases = lease_all(http, pool, 3)
    body = {"durationMinutes": 30, "preferredSpecs": pool.specs}
    waiters = []
    for _ in range(6):
        r = http.post("/scheduler/queue/join", headers=auth(pool.token), json=body)
        assert r.status_code == 201, r.text
        waiters.append(r.json()["id"])

    pid = pid_of(name=QUEUE)
    release_all(http, pool, leases)  # three devices come back: a drain hands them over
    kill(pid, name=QUEUE)

    def entries() -> list[dict[str, Any]]:
        return [http.get(f"/scheduler/queue/{w}", headers=auth(pool.token)).json() for w in waiters]

    def granted(count: int) -> list[dict[str, Any]] | None:
        served = [e for e in entries() if e["status"] == "fulfilled"]
        return served if len(served) == count else None

    first = eventually(lambda: granted(3), RESTART_SECONDS)
    assert [e["id"] for e in first] == waiters[:3], "in the order they joined"
    release_all(http, pool, [e["allocationId"] for e in first])
    second = eventually(lambda: granted(6), RESTART_SECONDS)
    assert len({e["allocationId"] for e in second}) == 6
    assert_fleet_consistent(fleet, pool, since)


async def test_the_serve_replica_killed_mid_request_grants_each_retried_key_once(
    fleet: RunningFleet, http: httpx.Client, cluster: None
) -> None:
    since = now(fleet)
    pool = seed_pool(http, fleet.admin_token, "kill-serve", 20)
    body = {"durationMinutes": 30, "preferredSpecs": pool.specs}
    outcomes: dict[str, httpx.Response] = {}

    async def allocate(client: httpx.AsyncClient, key: str) -> None:
        """A client that re-sends its POST with the same key until it gets an answer."""
        headers = {**auth(pool.token), "Idempotency-Key": key}
        for _ in range(600):
            try:
                r = await client.post("/scheduler/devices/allocate", headers=headers, json=body)
            except httpx.TransportError:
                r = None
            if r is not None and r.status_code < 500:
                outcomes[key] = r
                return
            await asyncio.sleep(0.1)

    keys = [f"kill-serve-{i}" for i in range(30)]
    pid = pid_of(class_name=INGRESS_CLASS)
    async with httpx.AsyncClient(base_url=fleet.api_url, timeout=10) as client:
        burst = asyncio.gather(*(allocate(client, k) for k in keys))
        await asyncio.sleep(0.05)
        await asyncio.to_thread(kill, pid, class_name=INGRESS_CLASS)
        await burst
        replayed = {
            k: (
                await client.post(
                    "/scheduler/devices/allocate",
                    headers={**auth(pool.token), "Idempotency-Key": k},
                    json=body,
                )
            ).json()
            for k in keys
        }

    assert set(outcomes) == set(keys), "every client got an answer"
    grants = {k: r.json()["allocationId"] for k, r in outcomes.items() if r.status_code == 201}
    assert all(r.status_code in (201, 409) for r in outcomes.values())
    assert len(grants) == 20, "the 20 devices went to 20 keys, none twice"
    assert {k: v["allocationId"] for k, v in replayed.items() if "allocationId" in v} == grants
    active = sql(
        fleet,
        "SELECT count(*) FROM allocations WHERE tenant_id = %s AND status = 'active'",
        uuid.UUID(pool.tenant_id),
    )
    assert active == [(20,)], "no lease lost, none granted twice"
    release_all(http, pool, list(grants.values()))
    assert_fleet_consistent(fleet, pool, since)
