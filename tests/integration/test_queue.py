"""The wait queue over the HTTP app with in-process drains, on real PostgreSQL: waiting,
event-driven grants, priority by tier, cancel, timeouts, backpressure and racing drains."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import replace

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.domain.errors import QueueFull
from scheduler.domain.identity import Principal, Role
from scheduler.domain.queueing import QueueLimits
from scheduler.domain.resources import DeviceRequirements
from scheduler.services.housekeeping import Housekeeper, HousekeeperConfig
from scheduler.services.queue import JoinQueue, Queued, drain_queue
from tests.builders import (
    auth,
    busy_pool,
    commands_with,
    in_pool,
    new_pool,
    new_tenant,
    new_token,
    run_sql,
    settle,
)

pytestmark = pytest.mark.integration


async def free_and_enterprise_tenants(
    client: httpx.AsyncClient, admin_token: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Two new tenants, of the lowest and the highest tier."""
    tenants = []
    for tier in ("free", "enterprise"):
        tenant = await new_tenant(client, admin_token)
        r = await client.patch(
            f"/scheduler/admin/tenants/{tenant['id']}",
            headers=auth(admin_token),
            json={"tier": tier},
        )
        assert r.status_code == 200 and r.json()["tier"] == tier
        tenants.append(tenant)
    return tenants[0], tenants[1]


async def test_a_waiter_gets_the_device_the_moment_it_is_reset(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    holder = await new_token(client, admin_token, tenant["id"], "holder")
    waiter = await new_token(client, admin_token, tenant["id"], "waiter")
    lease = (
        await client.post("/scheduler/devices/allocate", headers=auth(holder), json=in_pool(pool))
    ).json()

    r = await client.post(
        "/scheduler/queue/join", headers=auth(waiter), json=in_pool(pool, maxWaitMinutes=10)
    )
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["status"] == "waiting" and entry["tier"] == "standard"
    assert entry["reason"] == "all_matching_devices_busy"
    assert entry["position"] >= 1 and entry["estimatedStartAt"] is not None
    assert entry["estimatedStartAt"] > lease["expiresAt"]  # after that lease ends and a reset

    await client.post(
        "/scheduler/devices/release",
        headers=auth(holder),
        json={"allocationId": lease["allocationId"]},
    )
    await settle(services)
    r = await client.get(f"/scheduler/queue/{entry['id']}", headers=auth(waiter))
    done = r.json()
    assert done["status"] == "fulfilled" and done["allocationId"], done
    r = await client.get(f"/scheduler/allocations/{done['allocationId']}", headers=auth(waiter))
    assert r.json()["userId"] == "waiter" and r.json()["deviceId"] == lease["deviceId"]
    assert r.json()["durationMinutes"] == 30


async def test_allocate_with_queue_if_unavailable_answers_202_with_the_entry(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "eager")
    assert (
        await client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
    ).status_code == 201
    r = await client.post(
        "/scheduler/devices/allocate",
        headers=auth(token),
        json=in_pool(pool, queueIfUnavailable=True),
    )
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "waiting" and r.json()["id"]
    r = await client.post(
        "/scheduler/devices/allocate",
        headers=auth(token),
        json=in_pool(pool, preferredSpecs={"minCpu": 99}, queueIfUnavailable=True),
    )
    # nothing in the fleet could ever serve it: refused at once rather than queued
    assert r.status_code == 422 and r.json()["code"] == "unsatisfiable", r.text
    await settle(services)


async def test_a_higher_tier_is_served_first_and_others_keep_waiting(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    owner_tenant = await new_tenant(client, admin_token)
    owner = await new_token(client, admin_token, owner_tenant["id"], "owner")
    lease = (
        await client.post("/scheduler/devices/allocate", headers=auth(owner), json=in_pool(pool))
    ).json()
    free_tenant, big_tenant = await free_and_enterprise_tenants(client, admin_token)
    low = await new_token(client, admin_token, free_tenant["id"], "low")
    high = await new_token(client, admin_token, big_tenant["id"], "high")
    first = (
        await client.post("/scheduler/queue/join", headers=auth(low), json=in_pool(pool))
    ).json()
    second = (
        await client.post("/scheduler/queue/join", headers=auth(high), json=in_pool(pool))
    ).json()
    assert second["priority"] > first["priority"]
    r = await client.get(f"/scheduler/queue/{first['id']}/position", headers=auth(low))
    assert r.json()["reason"] == "higher_priority_ahead"

    await client.post(
        "/scheduler/devices/release",
        headers=auth(owner),
        json={"allocationId": lease["allocationId"]},
    )
    await settle(services)
    assert (await client.get(f"/scheduler/queue/{second['id']}", headers=auth(high))).json()[
        "status"
    ] == "fulfilled"
    still = (await client.get(f"/scheduler/queue/{first['id']}", headers=auth(low))).json()
    assert still["status"] == "waiting"
    r = await client.post(
        f"/scheduler/queue/{first['id']}/cancel", headers=auth(low), json={"reason": "gave up"}
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await client.post(f"/scheduler/queue/{first['id']}/cancel", headers=auth(low))
    assert r.status_code == 409 and r.json()["code"] == "queue_entry_not_waiting"
    r = await client.get(f"/scheduler/queue/{first['id']}", headers=auth(high))
    assert r.status_code == 404 and r.json()["code"] == "queue_entry_not_found"


async def test_an_overdue_entry_times_out_once_and_is_never_fulfilled_after(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "patient")
    lease = (
        await client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
    ).json()
    entry = (
        await client.post(
            "/scheduler/queue/join", headers=auth(token), json=in_pool(pool, maxWaitMinutes=1)
        )
    ).json()
    await run_sql(
        services,
        "UPDATE queue_entries SET deadline_at = now() - interval '1 second' WHERE id = %(id)s",
        {"id": uuid.UUID(entry["id"])},
    )
    config = HousekeeperConfig(relay_seconds=0.01, max_sleep_seconds=0.05, retention_seconds=60)
    keepers = [
        Housekeeper(
            services.uow, services.events, services.lifecycle, services.queue, config, f"hk-{i}"
        )
        for i in range(2)
    ]
    now = services.clock()
    await asyncio.gather(*(k.tick(now) for k in keepers))
    assert sum(k.timed_out_total for k in keepers) >= 1
    events = await run_sql(
        services,
        "SELECT count(*) AS n FROM outbox_events"
        " WHERE type = 'queue.timed_out' AND aggregate_id = %(id)s",
        {"id": entry["id"]},
    )
    assert events[0]["n"] == 1
    await client.post(
        "/scheduler/devices/release",
        headers=auth(token),
        json={"allocationId": lease["allocationId"]},
    )
    await settle(services)
    r = (await client.get(f"/scheduler/queue/{entry['id']}", headers=auth(token))).json()
    assert r["status"] == "timed_out" and r["allocationId"] is None
    assert r["reason"] == "max_wait_exceeded"


async def test_racing_drains_never_grant_one_device_or_entry_twice(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=6)
    tenant = await new_tenant(client, admin_token)
    principal = Principal(uuid.UUID(tenant["id"]), "crowd", Role.USER)
    requirements = DeviceRequirements(labels=pool.label)
    entries = [
        (await services.commands.handle(JoinQueue(None, 30, requirements, 30), principal)).result
        for _ in range(15)
    ]
    entries = [q.entry for q in entries]
    policy = services.config.queue_policy
    # four drains race each other and the drains the joins woke in this process
    await asyncio.gather(
        *(drain_queue(services.uow, now=services.clock(), policy=policy) for _ in range(4))
    )
    await settle(services)
    mine = {e.id for e in entries}
    leases = await run_sql(
        services,
        "SELECT a.device_id FROM queue_entries q JOIN allocations a ON a.id = q.allocation_id"
        " WHERE q.id = ANY(%(ids)s)",
        {"ids": list(mine)},
    )
    assert len(leases) == 6
    assert len({r["device_id"] for r in leases}) == 6
    rows = await run_sql(
        services,
        "SELECT status, count(*) AS n FROM queue_entries WHERE id = ANY(%(ids)s) GROUP BY status",
        {"ids": list(mine)},
    )
    assert Counter({r["status"]: r["n"] for r in rows}) == Counter(fulfilled=6, waiting=9)


async def test_the_queue_pushes_back_when_full(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool, _, _ = await busy_pool(client, admin_token)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "flood")
    principal = Principal(uuid.UUID(tenant["id"]), "flood", Role.USER)
    command = JoinQueue(None, 30, DeviceRequirements(labels=pool.label), 30)
    capped = commands_with(
        services, replace(services.config, queue_limits=QueueLimits(per_tenant=2))
    )
    for _ in range(2):
        assert isinstance((await capped.handle(command, principal)).result, Queued)
    with pytest.raises(QueueFull):
        await capped.handle(command, principal)
    commands, services.commands = services.commands, capped
    try:
        r = await client.post(
            "/scheduler/queue/join",
            headers=auth(token),
            json={"durationMinutes": 30, "preferredSpecs": {"labels": pool.label}},
        )
    finally:
        services.commands = commands
    assert r.status_code == 429 and r.json()["code"] == "queue_full"
    assert r.headers["retry-after"] == "30"


async def test_queue_input_is_validated_and_scoped(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "checker")
    for body in (
        {"durationMinutes": 14},
        {"durationMinutes": 1441},
        {"maxWaitMinutes": 0},
        {"maxWaitMinutes": 121},
        {"priority": 5},
    ):
        r = await client.post("/scheduler/queue/join", headers=auth(token), json=body)
        assert r.status_code == 422 and r.json()["code"] == "validation_error", body
    r = await client.post("/scheduler/queue/process-next", headers=auth(token))
    assert r.status_code == 403
    r = await client.post(
        "/scheduler/queue/process-batch", headers=auth(admin_token), json={"maxCount": 5}
    )
    assert r.status_code == 200 and "granted" in r.json()
    r = await client.get("/scheduler/queue", headers=auth(token), params={"status": "waiting"})
    assert r.status_code == 200 and r.json()["total"] == 0
    r = await client.get("/scheduler/queue/stats", headers=auth(token))
    assert r.status_code == 200 and r.json()["waiting"] == 0


async def test_an_enterprise_waiter_preempts_a_free_lease_after_notice_and_grace(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    from datetime import timedelta

    from scheduler.domain.queueing import QueuePolicy
    from tests.builders import expire_due

    pool = await new_pool(client, admin_token, devices=1)
    free_tenant, big_tenant = await free_and_enterprise_tenants(client, admin_token)
    free_user = await new_token(client, admin_token, free_tenant["id"], "cheap")
    vip = await new_token(client, admin_token, big_tenant["id"], "vip")
    lease = (
        await client.post(
            "/scheduler/devices/allocate", headers=auth(free_user), json=in_pool(pool)
        )
    ).json()
    entry = (
        await client.post("/scheduler/queue/join", headers=auth(vip), json=in_pool(pool))
    ).json()
    await settle(services)

    policy = QueuePolicy(
        preempting_tiers=frozenset({"enterprise"}), preemption_grace=timedelta(seconds=30)
    )
    for _ in range(2):  # a second drain must not mark a second lease
        await drain_queue(services.uow, now=services.clock(), policy=policy)
    notices = await run_sql(
        services,
        "SELECT payload FROM outbox_events WHERE type ="
        " 'allocation.preemption_notice' AND aggregate_id = %(id)s",
        {"id": lease["allocationId"]},
    )
    assert len(notices) == 1 and notices[0]["payload"]["queueEntryId"] == entry["id"]

    # within the grace period nothing happens; after it, the lease is revoked and billed
    early = await expire_due(services, now=services.clock())
    assert uuid.UUID(lease["allocationId"]) not in {r.allocation_id for r in early}
    later = services.clock() + timedelta(seconds=31)
    revoked = await expire_due(services, now=later)
    assert [r.allocation_id for r in revoked] == [uuid.UUID(lease["allocationId"])]
    record = await run_sql(
        services,
        "SELECT end_reason, duration_seconds FROM usage_records WHERE allocation_id = %(id)s",
        {"id": uuid.UUID(lease["allocationId"])},
    )
    assert record[0]["end_reason"] == "preempted" and record[0]["duration_seconds"] >= 31
    r = await client.get(f"/scheduler/allocations/{lease['allocationId']}", headers=auth(free_user))
    assert r.json()["status"] == "revoked"

    services.lifecycle.request_reset(uuid.UUID(pool.node["id"]), [uuid.UUID(lease["deviceId"])])
    await settle(services)
    r = (await client.get(f"/scheduler/queue/{entry['id']}", headers=auth(vip))).json()
    assert r["status"] == "fulfilled"


async def test_without_opting_in_nobody_is_preempted(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    free_tenant, big_tenant = await free_and_enterprise_tenants(client, admin_token)
    lease = (
        await client.post(
            "/scheduler/devices/allocate",
            headers=auth(await new_token(client, admin_token, free_tenant["id"], "f")),
            json=in_pool(pool),
        )
    ).json()
    await client.post(
        "/scheduler/queue/join",
        headers=auth(await new_token(client, admin_token, big_tenant["id"], "e")),
        json=in_pool(pool),
    )
    await drain_queue(services.uow, now=services.clock(), policy=services.config.queue_policy)
    rows = await run_sql(
        services,
        "SELECT revoke_at FROM allocations WHERE id = %(id)s",
        {"id": uuid.UUID(lease["allocationId"])},
    )
    assert rows[0]["revoke_at"] is None
