"""The periodic jobs against real PostgreSQL and Redis: expiry and the outbox relay run
exactly once per lease and per event, even with two housekeepers alive."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import httpx

from scheduler.bootstrap import Services
from scheduler.services.housekeeping import Housekeeper, HousekeeperConfig
from tests.builders import auth, force_due, in_pool, new_pool, new_tenant, new_token, run_sql


def housekeeper(services: Services, owner: str) -> Housekeeper:
    config = HousekeeperConfig(relay_seconds=0.01, max_sleep_seconds=0.05, retention_seconds=3600)
    return Housekeeper(
        services.uow, services.events, services.lifecycle, services.queue, config, owner
    )


async def stream_event_ids(services: Services) -> Counter[str]:
    entries = await services.redis.xrange(services.settings.events_stream)
    return Counter(fields["event_id"] for _, fields in entries)


async def test_two_housekeepers_expire_each_lease_and_relay_each_event_once(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=12)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "sleepy")
    ids = []
    for _ in range(12):
        r = await client.post(
            "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
        )
        ids.append(uuid.UUID(r.json()["allocationId"]))
    await force_due(services, ids)

    first, second = housekeeper(services, "hk-1"), housekeeper(services, "hk-2")
    for _ in range(5):
        now = services.clock()
        await asyncio.gather(first.tick(now), second.tick(now + timedelta(milliseconds=1)))
        await asyncio.gather(first.idle(), second.idle())  # their relays run off the tick
        await asyncio.sleep(0.02)

    rows = await run_sql(
        services,
        "SELECT a.status, a.ended_at = a.expires_at AS on_time, count(u.id) AS records"
        " FROM allocations a LEFT JOIN usage_records u ON u.allocation_id = a.id"
        " WHERE a.id = ANY(%(ids)s) GROUP BY a.id",
        {"ids": ids},
    )
    assert [tuple(r.values()) for r in rows] == [("expired", True, 1)] * 12
    unrelayed = await run_sql(
        services, "SELECT count(*) AS n FROM outbox_events WHERE relayed_at IS NULL"
    )
    expired_events = await run_sql(
        services,
        "SELECT event_id::text AS id FROM outbox_events WHERE type = 'allocation.expired'"
        " AND aggregate_id = ANY(%(ids)s)",
        {"ids": [str(i) for i in ids]},
    )
    assert first.expired_total + second.expired_total == 12
    assert unrelayed[0]["n"] == 0
    relayed = await stream_event_ids(services)
    assert len(expired_events) == 12
    assert all(relayed[e["id"]] == 1 for e in expired_events)
    assert max(relayed.values()) == 1, "an event was relayed twice"


async def test_a_job_tick_is_claimed_once(services: Services) -> None:
    now = services.clock()
    tick = int(now.timestamp() * 1000)

    async def claim(owner: str) -> bool:
        async with services.uow() as uow:
            won = await uow.ticks.claim_tick("test-job", tick, owner, now)
            await asyncio.sleep(0.05)
            await uow.commit()
            return won

    results = await asyncio.gather(*(claim(f"owner-{i}") for i in range(5)))
    assert sorted(results) == [False] * 4 + [True]


async def test_an_expired_device_is_reset_and_offered_again(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "late")
    grant = (
        await client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
    ).json()
    await force_due(services, [grant["allocationId"]])
    r = await client.post("/scheduler/allocations/release-expired", headers=auth(admin_token))
    assert r.status_code == 200 and r.json()["count"] >= 1
    r = await client.get(f"/scheduler/allocations/{grant['allocationId']}", headers=auth(token))
    assert r.json()["status"] == "expired" and r.json()["endReason"] == "expired"
    await services.lifecycle.drain()  # type: ignore[attr-defined]
    r = await client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
    assert r.status_code == 201 and r.json()["deviceId"] == grant["deviceId"]
