"""The allocate that grants in the round trip of its commit, on real PostgreSQL: a grant that
lost its devices or its quota to a concurrent request between its read and its commit makes
the commit fail and keeps nothing (no lease, no event, no device taken); the command path
then reads its grant; the stored outcome and the event are the device the lease got."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.domain.allocations import lease_window
from scheduler.domain.errors import ClaimContended, QuotaExceeded, SchedulerError
from scheduler.domain.identity import Principal, Role
from scheduler.domain.resources import DeviceRequirements
from scheduler.services.command_path import GrantAtCommit, Unit
from scheduler.services.commands import PendingLease
from scheduler.services.leases import place_lease_at_commit
from tests.builders import Pool, auth, in_pool, new_pool, new_tenant, new_token, run_sql

pytestmark = pytest.mark.integration


async def _grant_sent_then_beaten(
    services: Services, client: httpx.AsyncClient, pool: Pool, tenant_id: str, token: str
) -> tuple[uuid.UUID, SchedulerError]:
    """Read the candidates in one transaction; before its grant is sent (with the commit),
    another request (``token``) allocates from the pool. The lease id and the commit's error."""
    principal = Principal(uuid.UUID(tenant_id), "slow", Role.USER)
    now = services.clock()
    allocated_at, expires_at = lease_window(now, 30)
    lease = PendingLease(uuid.uuid4(), principal.tenant_id, "slow", allocated_at, expires_at)
    async with services.uow() as uow:
        send_grant = uow.allocations.grant_at_commit

        async def beaten_first(
            lease: PendingLease,
            device_ids: list[uuid.UUID],
            matching: DeviceRequirements | None = None,
            *,
            ranked_by: str | None = None,
        ) -> Callable[[], Awaitable[uuid.UUID]]:
            r = await client.post(
                "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
            )
            assert r.status_code == 201, r.text
            return await send_grant(lease, device_ids, matching, ranked_by=ranked_by)

        uow.allocations.grant_at_commit = beaten_first  # type: ignore[method-assign]
        unit = Unit(uow, principal, now, services.config, services.queue, grant_at_commit=True)
        sent = await place_lease_at_commit(unit, lease, DeviceRequirements(labels=pool.label))
        assert isinstance(sent, GrantAtCommit) and len(sent.options) >= 1
        with pytest.raises(SchedulerError) as refused:  # raised where its result is read
            events = {d: ev for d, (_, ev) in sent.options.items()}
            await uow.outbox.add_for_granted(lease.id, events)
            await uow.commit()
    return lease.id, refused.value


async def _traces_of(services: Services, lease_id: uuid.UUID) -> tuple[int, int]:
    leases = await run_sql(
        services, "SELECT count(*) AS n FROM allocations WHERE id = %(id)s", {"id": lease_id}
    )
    events = await run_sql(
        services,
        "SELECT count(*) AS n FROM outbox_events WHERE payload->>'allocationId' = %(id)s",
        {"id": str(lease_id)},
    )
    return int(leases[0]["n"]), int(events[0]["n"])


async def test_a_grant_whose_device_was_taken_before_its_commit_keeps_nothing(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    other = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, other["id"], "quick")

    lease_id, error = await _grant_sent_then_beaten(services, client, pool, tenant["id"], token)

    assert isinstance(error, ClaimContended)
    assert await _traces_of(services, lease_id) == (0, 0)
    usage = await client.get(f"/scheduler/admin/tenants/{tenant['id']}", headers=auth(admin_token))
    assert usage.json()["usage"]["maxDevices"] == 0  # nothing charged


async def test_a_grant_whose_quota_was_taken_before_its_commit_keeps_nothing(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=3)
    tenant = await new_tenant(client, admin_token, max_devices=1)
    token = await new_token(client, admin_token, tenant["id"], "quick")

    lease_id, error = await _grant_sent_then_beaten(services, client, pool, tenant["id"], token)

    assert isinstance(error, QuotaExceeded)
    assert await _traces_of(services, lease_id) == (0, 0)
    states = await run_sql(
        services,
        "SELECT status, count(*) AS n FROM devices WHERE node_id = %(node)s GROUP BY status",
        {"node": uuid.UUID(pool.node["id"])},
    )
    assert {r["status"]: r["n"] for r in states} == {"allocated": 1, "available": 2}


async def test_racing_keyed_allocates_store_the_device_each_lease_got(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    """More requests than devices, each with its own key: the first tries of most lose their
    devices at the commit and read their grant; each key keeps its own outcome, each lease
    one event naming its device, and each retry gets its first answer back."""
    pool = await new_pool(client, admin_token, devices=6)
    tenant = await new_tenant(client, admin_token)
    tokens = [await new_token(client, admin_token, tenant["id"], f"u{i}") for i in range(4)]
    keys = [uuid.uuid4().hex for _ in range(24)]

    async def allocate(i: int) -> httpx.Response:
        headers = {**auth(tokens[i % 4]), "Idempotency-Key": keys[i]}
        return await client.post("/scheduler/devices/allocate", headers=headers, json=in_pool(pool))

    first = await asyncio.gather(*(allocate(i) for i in range(24)))
    again = await asyncio.gather(*(allocate(i) for i in range(24)))

    codes = Counter(r.status_code for r in first)
    assert codes == {201: 6, 409: 18}, codes
    assert [r.json() for r in again] == [r.json() for r in first]
    grants = [r.json() for r in first if r.status_code == 201]
    assert len({g["deviceId"] for g in grants}) == 6
    for grant in grants:
        rows = await run_sql(
            services,
            "SELECT payload->>'deviceId' AS device FROM outbox_events"
            " WHERE type = 'allocation.granted' AND payload->>'allocationId' = %(id)s",
            {"id": grant["allocationId"]},
        )
        assert [r["device"] for r in rows] == [grant["deviceId"]]
