"""Invariants under concurrency, each proven by racing real PostgreSQL transactions."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.domain.identity import Principal, Role
from scheduler.services.commands import ReleaseAllocation
from tests.builders import (
    auth,
    expire_due,
    force_due,
    in_pool,
    new_pool,
    new_tenant,
    new_token,
    run_sql,
)

pytestmark = pytest.mark.integration


async def test_200_concurrent_allocations_by_50_users_over_20_devices_grant_exactly_20(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=20)
    capped = await new_tenant(client, admin_token, max_devices=7)
    open_ = await new_tenant(client, admin_token, max_devices=100)
    tokens = [
        await new_token(client, admin_token, (capped if i % 2 else open_)["id"], f"user-{i}")
        for i in range(50)
    ]

    async def allocate(i: int) -> httpx.Response:
        return await client.post(
            "/scheduler/devices/allocate", headers=auth(tokens[i % 50]), json=in_pool(pool)
        )

    responses = await asyncio.gather(*(allocate(i) for i in range(200)))
    codes = Counter(r.status_code for r in responses)
    granted = [r.json() for r in responses if r.status_code == 201]
    assert len(granted) == 20, codes
    assert set(codes) <= {201, 403, 409}, codes
    assert len({g["deviceId"] for g in granted}) == 20
    assert sum(g["tenantId"] == capped["id"] for g in granted) <= 7
    refused = [r.json()["code"] for r in responses if r.status_code != 201]
    assert set(refused) <= {"no_capacity", "quota_exceeded"}
    for tenant in (capped, open_):
        r = await client.get(f"/scheduler/admin/tenants/{tenant['id']}", headers=auth(admin_token))
        active = sum(g["tenantId"] == tenant["id"] for g in granted)
        assert r.json()["usage"]["maxDevices"] == active


async def _usage_records(services: Services, allocation_id: str) -> int:
    rows = await run_sql(
        services,
        "SELECT count(*) AS n FROM usage_records WHERE allocation_id = %(id)s",
        {"id": uuid.UUID(allocation_id)},
    )
    return int(rows[0]["n"])


async def test_release_racing_expiry_on_one_lease_writes_exactly_one_usage_record(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=10)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "racer")
    principal = Principal(uuid.UUID(tenant["id"]), "racer", Role.USER)
    for _ in range(10):
        r = await client.post(
            "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
        )
        allocation_id = r.json()["allocationId"]
        await force_due(services, [allocation_id])
        now = services.clock()
        outcomes = await asyncio.gather(
            services.commands.handle(ReleaseAllocation(uuid.UUID(allocation_id)), principal),
            expire_due(services, now=now),
            return_exceptions=True,
        )
        assert await _usage_records(services, allocation_id) == 1, outcomes
    r = await client.get(f"/scheduler/admin/tenants/{tenant['id']}", headers=auth(admin_token))
    assert r.json()["usage"]["maxDevices"] == 0


async def test_a_second_release_is_refused_and_writes_no_second_usage_record(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "twice")
    grant = (
        await client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
    ).json()
    body = {"allocationId": grant["allocationId"]}
    first, second = await asyncio.gather(
        client.post("/scheduler/devices/release", headers=auth(token), json=body),
        client.post("/scheduler/devices/release", headers=auth(token), json=body),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 404]
    third = await client.post("/scheduler/devices/release", headers=auth(token), json=body)
    assert third.status_code == 404 and third.json()["code"] == "allocation_not_found"
    assert await _usage_records(services, grant["allocationId"]) == 1


async def test_concurrent_retries_with_one_idempotency_key_get_one_lease(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=5)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "retrier")
    headers = {**auth(token), "Idempotency-Key": uuid.uuid4().hex}
    responses = await asyncio.gather(
        *(
            client.post("/scheduler/devices/allocate", headers=headers, json=in_pool(pool))
            for _ in range(10)
        )
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["allocationId"] for r in responses}) == 1
    r = await client.get("/scheduler/allocations", headers=auth(token))
    assert r.json()["total"] == 1

    other = await client.post(
        "/scheduler/devices/allocate", headers=headers, json=in_pool(pool, durationMinutes=99)
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


async def test_the_one_active_lease_per_device_index_refuses_a_second_lease(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    """Even a writer that skips the service's checks cannot lease one device twice."""
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "owner")
    grant = (
        await client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
    ).json()
    import psycopg

    rogue = {"id": uuid.uuid4(), "device": grant["deviceId"], "tenant": tenant["id"]}
    with pytest.raises(psycopg.errors.UniqueViolation, match="one_active_per_device"):
        await run_sql(
            services,
            "INSERT INTO allocations (id, device_id, tenant_id, user_id, status, allocated_at,"
            " expires_at, cpu_cores, memory_mb, storage_mb) VALUES (%(id)s, %(device)s,"
            " %(tenant)s, 'rogue', 'active', now(), now() + interval '1 year', 1, 1, 1)",
            rogue,
        )
