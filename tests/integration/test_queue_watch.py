"""A queue a crowd can watch: reads show what the last drain stored (never a reordering per
call), places count only the entries one competes with, and clients wait for a change with
``waitSeconds`` instead of polling."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.services.queue_dispatch import QueueDrainer
from tests.builders import (
    auth,
    busy_pool,
    in_pool,
    new_pool,
    new_tenant,
    new_token,
    run_sql,
    settle,
)

pytestmark = pytest.mark.integration


async def test_reads_show_the_view_the_last_drain_stored_not_a_fresh_order(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool, _, _ = await busy_pool(client, admin_token)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "watcher")
    joined = await client.post("/scheduler/queue/join", headers=auth(token), json=in_pool(pool))
    assert joined.status_code == 201, joined.text
    entry = joined.json()
    assert entry["position"] == 1 and entry["viewAsOf"] and entry["estimatedStartAt"]
    await settle(services)

    # An entry that jumps ahead without a drain (written behind the scheduler's back) does
    # not change what readers see: they read the stored view, they do not reorder.
    await run_sql(
        services,
        "INSERT INTO queue_entries (id, tenant_id, user_id, tier, status, duration_minutes,"
        " requirements, submitted_at, deadline_at) SELECT %(id)s, tenant_id, 'sneaky',"
        " 'enterprise', 'waiting', 30, requirements, submitted_at - interval '1 hour',"
        " deadline_at FROM queue_entries WHERE id = %(entry)s",
        {"id": uuid.uuid4(), "entry": uuid.UUID(entry["id"])},
    )
    r = await client.get(f"/scheduler/queue/{entry['id']}", headers=auth(token))
    assert (r.json()["position"], r.json()["viewAsOf"]) == (1, entry["viewAsOf"])

    await services.queue.drain()  # the next drain sees it
    r = await client.get(f"/scheduler/queue/{entry['id']}", headers=auth(token))
    assert r.json()["position"] == 2 and r.json()["reason"] == "higher_priority_ahead"
    assert r.json()["viewAsOf"] > entry["viewAsOf"]
    listed = await client.get("/scheduler/queue", headers=auth(token), params={"status": "waiting"})
    assert [e["position"] for e in listed.json()["items"]] == [2]
    await run_sql(
        services,
        "UPDATE queue_entries SET status = 'cancelled', ended_at = now()"
        " WHERE tenant_id = %(t)s AND status = 'waiting'",
        {"t": uuid.UUID(tenant["id"])},
    )


async def test_entries_for_other_devices_are_not_counted_ahead(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool_a, _, _ = await busy_pool(client, admin_token)
    pool_b, _, _ = await busy_pool(client, admin_token)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "fair")
    ids = []
    for pool in (pool_a, pool_b, pool_a):
        r = await client.post("/scheduler/queue/join", headers=auth(token), json=in_pool(pool))
        ids.append(r.json()["id"])
    await settle(services)

    places = [
        (await client.get(f"/scheduler/queue/{i}/position", headers=auth(token))).json()["position"]
        for i in ids
    ]

    assert places == [1, 1, 2]
    for entry_id in ids:
        await client.post(f"/scheduler/queue/{entry_id}/cancel", headers=auth(token))


async def test_a_long_poll_answers_the_moment_the_entry_is_served_and_holds_no_connection(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool, holder, lease = await busy_pool(client, admin_token)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "long-poller")
    entry = (
        await client.post("/scheduler/queue/join", headers=auth(token), json=in_pool(pool))
    ).json()
    await settle(services)

    started = time.monotonic()
    r = await client.get(
        f"/scheduler/queue/{entry['id']}", headers=auth(token), params={"waitSeconds": 0.3}
    )
    assert r.json()["status"] == "waiting" and 0.25 <= time.monotonic() - started < 2

    waiters = [
        asyncio.create_task(
            client.get(
                f"/scheduler/queue/{entry['id']}", headers=auth(token), params={"waitSeconds": 20}
            )
        )
        for _ in range(30)
    ]
    await asyncio.sleep(0.3)
    in_use = services.database._pool.get_stats()
    assert in_use["pool_size"] - in_use["pool_available"] <= 2, in_use  # 30 waiters, ~no connection

    released_at = time.monotonic()
    await client.post(
        "/scheduler/devices/release",
        headers=auth(holder),
        json={"allocationId": lease["allocationId"]},
    )
    answers = await asyncio.gather(*waiters)
    told = time.monotonic() - released_at

    assert {a.json()["status"] for a in answers} == {"fulfilled"}
    assert told < 5, told  # the reset (50 ms here) and a drain, not the 20 s
    allocation_id = answers[0].json()["allocationId"]

    watcher = asyncio.create_task(
        client.get(
            f"/scheduler/allocations/{allocation_id}",
            headers=auth(token),
            params={"waitSeconds": 20},
        )
    )
    await asyncio.sleep(0.2)
    assert not watcher.done()
    await client.post(
        "/scheduler/devices/release", headers=auth(token), json={"allocationId": allocation_id}
    )
    ended = await asyncio.wait_for(watcher, timeout=5)
    assert ended.json()["status"] == "released"
    await settle(services)


async def test_wait_seconds_are_bounded(client: httpx.AsyncClient, admin_token: str) -> None:
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "greedy")
    for params in ({"waitSeconds": 31}, {"waitSeconds": -1}, {"waitSeconds": "soon"}):
        r = await client.get(f"/scheduler/queue/{uuid.uuid4()}", headers=auth(token), params=params)
        assert r.status_code == 422 and r.json()["code"] == "validation_error"
        r = await client.get(
            f"/scheduler/allocations/{uuid.uuid4()}", headers=auth(token), params=params
        )
        assert r.status_code == 422 and r.json()["code"] == "validation_error"


async def test_a_wake_that_cannot_help_any_waiter_costs_no_drain(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool, holder, lease = await busy_pool(client, admin_token)
    other = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "only-pool-a")
    entry = (
        await client.post("/scheduler/queue/join", headers=auth(token), json=in_pool(pool))
    ).json()
    await settle(services)
    drainer = services.queue
    assert isinstance(drainer, QueueDrainer)
    drains = drainer.drains

    drainer.wake(tenants=[uuid.uuid4()])  # a tenant with nobody waiting freed quota
    drainer.wake(devices=[uuid.UUID(other.devices[0]["id"])])  # a device nobody waits for
    await drainer.idle()
    assert drainer.drains == drains

    drainer.wake(tenants=[uuid.UUID(tenant["id"])])  # a waiter's own tenant
    await drainer.idle()
    assert drainer.drains == drains + 1
    drainer.wake(devices=[uuid.UUID(lease["deviceId"])])  # the device the waiter wants
    await drainer.idle()
    assert drainer.drains == drains + 2
    r = await client.post(f"/scheduler/queue/{entry['id']}/cancel", headers=auth(token))
    assert r.status_code == 200 and holder


async def test_the_change_feed_knows_when_nobody_waits_so_wakes_can_skip_the_queue(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    """A Ray replica skips its actor call on release while the feed says nobody waits."""
    pool, _, _ = await busy_pool(client, admin_token)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "counted")
    assert services.changes.queue_empty in (True, False)  # starts the listener

    async def announced(expected: bool) -> None:
        for _ in range(100):
            if services.changes.queue_empty is expected:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"queue_empty never became {expected}")

    await run_sql(
        services,
        "UPDATE queue_entries SET status = 'cancelled', ended_at = now() WHERE status = 'waiting'",
    )
    await services.queue.drain()
    await announced(True)
    entry = (
        await client.post("/scheduler/queue/join", headers=auth(token), json=in_pool(pool))
    ).json()
    await announced(False)
    await client.post(f"/scheduler/queue/{entry['id']}/cancel", headers=auth(token))
    await services.queue.drain()
    await announced(True)
