"""Outages cost no lease, bill or event: a stuck lock is a 503 with Retry-After, not a hung
request; the relay publishes with no transaction open (a paused Redis holds no row); old
relayed events are pruned, undelivered ones never; no process gets the admin token."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import psycopg
import pytest
import redis.asyncio as aioredis

from scheduler.bootstrap import Services, build_services
from scheduler.config import Settings
from scheduler.services.housekeeping import prune_ledger, relay_outbox
from serve.app import create_app
from tests.builders import auth, in_pool, new_pool, new_tenant, new_token, run_sql
from tests.integration.test_bad_input import assert_problem

pytestmark = pytest.mark.integration


@pytest.fixture
async def impatient(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a 300 ms lock timeout."""
    services = build_services(settings.model_copy(update={"db_lock_timeout_seconds": 0.3}))
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://pf") as client:
        yield client
    await services.close()


def plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


async def test_a_stuck_lock_is_a_503_with_retry_after_not_a_hung_request(
    client: httpx.AsyncClient,
    admin_token: str,
    database_url: str,
    impatient: httpx.AsyncClient,
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "blocked")
    async with await psycopg.AsyncConnection.connect(plain(database_url)) as stuck:
        await stuck.execute("SELECT 1 FROM tenants WHERE id = %s FOR UPDATE", (tenant["id"],))
        started = time.monotonic()
        r = await impatient.post(
            "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
        )
        waited = time.monotonic() - started
    assert_problem(r, 503, "service_unavailable")
    assert r.headers["retry-after"] == "1" and waited < 3
    r = await impatient.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
    assert r.status_code == 201, r.text  # the lock is gone: served, and nothing was lost


async def test_the_relay_publishes_with_no_transaction_open(
    services: Services, settings: Settings, database_url: str
) -> None:
    """While Redis holds the relay's writes (CLIENT PAUSE), no session of the test database
    sits idle in a transaction; the events arrive once Redis is back."""
    tenant_row = await run_sql(services, "SELECT id FROM tenants LIMIT 1")
    assert tenant_row
    event_id = uuid.uuid4()
    await run_sql(
        services,
        "INSERT INTO outbox_events (event_id, type, aggregate_id, payload, occurred_at)"
        " VALUES (%(id)s, 'test.paused', 'x', '{}', now())",
        {"id": event_id},
    )
    control = aioredis.Redis.from_url(str(settings.redis_url))
    try:
        await control.execute_command("CLIENT", "PAUSE", "800", "WRITE")
        relay = asyncio.create_task(
            relay_outbox(
                services.uow,
                services.events,
                now=services.clock(),
                owner=f"paused-{uuid.uuid4().hex[:6]}",
                interval_seconds=0.001,
                limit=100_000,
            )
        )
        await asyncio.sleep(0.4)
        assert not relay.done()  # waiting on Redis
        async with await psycopg.AsyncConnection.connect(plain(database_url)) as probe:
            cursor = await probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state = 'idle in transaction'"
            )
            (idle_in_transaction,) = await cursor.fetchone() or (None,)
        assert idle_in_transaction == 0
        assert (await relay).total() >= 1
    finally:
        await control.execute_command("CLIENT", "UNPAUSE")
        await control.aclose()
    (row,) = await run_sql(
        services,
        "SELECT relayed_at IS NOT NULL AS relayed FROM outbox_events WHERE event_id = %(id)s",
        {"id": event_id},
    )
    assert row["relayed"]


async def test_relayed_events_and_keys_are_pruned_by_age_and_undelivered_events_never(
    services: Services,
) -> None:
    old_relayed, old_pending = uuid.uuid4(), uuid.uuid4()
    # a pruning tick of its own: other tests may have claimed this minute's
    later = services.clock() + timedelta(hours=2, minutes=uuid.uuid4().int % 600)
    tenant = uuid.uuid4()
    for key, age in (("old-key", 5), ("young-key", 1)):
        await run_sql(
            services,
            "INSERT INTO idempotency_keys (tenant_id, principal_user_id, key, operation,"
            " request_hash, created_at) VALUES (%(t)s, 'u', %(k)s, 'op', 'h', %(at)s)",
            {"t": tenant, "k": key, "at": later - timedelta(hours=age)},
        )
    for event_id, relayed in ((old_relayed, "now() - interval '100 hours'"), (old_pending, "NULL")):
        await run_sql(
            services,
            "INSERT INTO outbox_events (event_id, type, aggregate_id, payload, occurred_at,"
            f" relayed_at) VALUES (%(id)s, 'test.old', 'x', '{{}}', now() - interval '100 hours',"
            f" {relayed})",
            {"id": event_id},
        )
    await prune_ledger(
        services.uow,
        now=later,
        owner=f"pruner-{uuid.uuid4().hex[:6]}",
        retention_seconds=3600,
        outbox_retention=timedelta(hours=72),
        idempotency_retention=timedelta(hours=3),
    )
    keys = await run_sql(
        services, "SELECT key FROM idempotency_keys WHERE tenant_id = %(t)s", {"t": tenant}
    )
    assert [r["key"] for r in keys] == ["young-key"]
    rows = await run_sql(
        services,
        "SELECT event_id FROM outbox_events WHERE event_id = ANY(%(ids)s)",
        {"ids": [old_relayed, old_pending]},
    )
    assert [r["event_id"] for r in rows] == [old_pending]


def test_no_worker_process_is_given_the_admin_token() -> None:
    settings = Settings(
        database_url="postgresql://u@h/db", redis_url="redis://h", admin_token="pf_secret"
    )

    assert "admin_token" not in settings.for_workers()
    assert "pf_secret" not in str(settings.for_workers())


async def test_timer_jobs_run_on_while_redis_is_paused(
    client: httpx.AsyncClient, admin_token: str, services: Services, settings: Settings
) -> None:
    """A paused Redis holds the relay, not the expiry: the lease ends in the same tick and
    its events are relayed once Redis is back."""
    from scheduler.services.housekeeping import Housekeeper, HousekeeperConfig
    from tests.builders import force_due

    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "paused")
    lease = await client.post(
        "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
    )
    await force_due(services, [lease.json()["allocationId"]])
    config = HousekeeperConfig(relay_seconds=0.01, max_sleep_seconds=0.05, retention_seconds=60)
    keeper = Housekeeper(
        services.uow, services.events, services.lifecycle, services.queue, config, "paused-hk"
    )
    control = aioredis.Redis.from_url(str(settings.redis_url))
    try:
        await control.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
        started = time.monotonic()
        await keeper.tick(services.clock())
        ticked = time.monotonic() - started
        r = await client.get(
            f"/scheduler/allocations/{lease.json()['allocationId']}", headers=auth(token)
        )
        assert r.json()["status"] == "expired" and ticked < 1.0, ticked
    finally:
        await control.execute_command("CLIENT", "UNPAUSE")
        await control.aclose()
    await keeper.idle()
    for _ in range(50):  # Redis is back: the relay catches up (older events go first)
        (row,) = await run_sql(
            services,
            "SELECT count(*) FILTER (WHERE relayed_at IS NULL) AS pending FROM outbox_events"
            " WHERE type = 'allocation.expired' AND aggregate_id = %(id)s",
            {"id": lease.json()["allocationId"]},
        )
        if row["pending"] == 0:
            break
        await keeper.tick(services.clock())
        await keeper.idle()
    assert row["pending"] == 0


async def test_readiness_answers_within_two_seconds_with_everything_down(
    settings: Settings,
) -> None:
    down = settings.model_copy(
        update={
            "database_url": "postgresql+psycopg://postgres@10.255.255.1:5432/nowhere",
            "redis_url": "redis://10.255.255.1:6379/0",
        }
    )
    services = build_services(down)
    transport = httpx.ASGITransport(app=create_app(services))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://pf") as client:
            started = time.monotonic()
            r = await client.get("/readyz")
            waited = time.monotonic() - started
        assert r.status_code == 503 and waited < 2.0, waited
        assert r.json()["checks"] == {"postgres": False, "redis": False}
    finally:
        await services.close()


async def test_a_connection_lost_inside_a_unit_of_work_is_infrastructure_not_a_driver_error(
    services: Services,
) -> None:
    from scheduler.domain.errors import InfrastructureError

    with pytest.raises(InfrastructureError):
        async with services.uow() as uow:
            await uow.tenants.list()  # its connection is in a transaction (a pipeline's)
            killed = await run_sql(
                services,
                "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity"
                " WHERE datname = current_database() AND state <> 'idle'"
                " AND pid <> pg_backend_pid()",
            )
            assert killed == [{"done": True}]
            await asyncio.sleep(0.1)
    # and the pool hands out a working connection next
    assert await run_sql(services, "SELECT 1 AS one") == [{"one": 1}]
