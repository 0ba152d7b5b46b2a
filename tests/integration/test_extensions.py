"""Extending leases within the tenant's limits, and the warning before expiry."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.services.command_path import run_unit
from scheduler.services.extensions import warn_expiring
from tests.builders import auth, in_pool, new_pool, new_tenant, new_token, run_sql

pytestmark = pytest.mark.integration


async def test_a_lease_extends_until_the_tenant_limits_and_says_how_much_is_left(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    r = await client.patch(
        f"/scheduler/admin/tenants/{tenant['id']}",
        headers=auth(admin_token),
        json={"extensionPolicy": {"maxExtensions": 2, "maxTotalMinutes": 100}},
    )
    assert r.json()["extensionPolicy"] == {"maxExtensions": 2, "maxTotalMinutes": 100}
    token = await new_token(client, admin_token, tenant["id"], "long")
    lease = (
        await client.post(
            "/scheduler/devices/allocate",
            headers=auth(token),
            json=in_pool(pool, durationMinutes=30),
        )
    ).json()
    path = f"/scheduler/allocations/{lease['allocationId']}"

    info = (await client.get(f"{path}/extend-info", headers=auth(token))).json()
    assert info == {
        "canExtend": True,
        "maxAdditionalMinutes": 70,
        "remainingExtends": 2,
        "totalDurationMinutes": 30,
        "maxTotalMinutes": 100,
        "reason": "max_total_duration",
    }
    r = await client.put(f"{path}/extend", headers=auth(token), json={"additionalMinutes": 80})
    assert r.status_code == 409 and r.json()["code"] == "extension_not_allowed"
    assert r.json()["maxAdditionalMinutes"] == 70
    r = await client.put(
        f"{path}/extend",
        headers=auth(token),
        json={"additionalMinutes": 20, "reason": "tests run long"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["durationMinutes"] == 50 and body["extensionCount"] == 1
    assert body["extendInfo"]["remainingExtends"] == 1
    assert body["expiresAt"] > lease["expiresAt"]
    r = await client.put(f"{path}/extend", headers=auth(token), json={"additionalMinutes": 5})
    assert r.status_code == 200
    info = (await client.get(f"{path}/extend-info", headers=auth(token))).json()
    assert info["canExtend"] is False and info["reason"] == "max_extensions_reached"
    events = await run_sql(
        services,
        "SELECT count(*) AS n FROM outbox_events"
        " WHERE type = 'allocation.extended' AND aggregate_id = %(id)s",
        {"id": lease["allocationId"]},
    )
    assert events[0]["n"] == 2


async def test_extension_input_and_scope_are_checked(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "a")
    other = await new_token(client, admin_token, (await new_tenant(client, admin_token))["id"], "b")
    lease = (
        await client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
    ).json()
    path = f"/scheduler/allocations/{lease['allocationId']}"
    for minutes in (0, 1441, "x"):
        r = await client.put(
            f"{path}/extend", headers=auth(token), json={"additionalMinutes": minutes}
        )
        assert r.status_code == 422
    r = await client.put(f"{path}/extend", headers=auth(other), json={"additionalMinutes": 5})
    assert r.status_code == 404 and r.json()["code"] == "allocation_not_found"
    r = await client.get(f"/scheduler/allocations/{uuid.uuid4()}/extend-info", headers=auth(token))
    assert r.status_code == 404
    await client.post(
        "/scheduler/devices/release",
        headers=auth(token),
        json={"allocationId": lease["allocationId"]},
    )
    r = await client.put(f"{path}/extend", headers=auth(token), json={"additionalMinutes": 5})
    assert r.status_code == 409
    info = (await client.get(f"{path}/extend-info", headers=auth(token))).json()
    assert info["canExtend"] is False and info["reason"] == "allocation_not_active"


async def test_each_lease_is_warned_once_before_it_expires_and_again_after_an_extension(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "w")
    lease = (
        await client.post(
            "/scheduler/devices/allocate",
            headers=auth(token),
            json=in_pool(pool, durationMinutes=10),
        )
    ).json()

    async def warn(lead_minutes: int) -> None:
        lead = timedelta(minutes=lead_minutes)
        await run_unit(services.uow, lambda u: warn_expiring(u, lead=lead), now=services.clock())

    async def warnings() -> int:
        rows = await run_sql(
            services,
            "SELECT count(*) AS n FROM outbox_events WHERE type ="
            " 'allocation.expiring' AND aggregate_id = %(id)s",
            {"id": lease["allocationId"]},
        )
        return int(rows[0]["n"])

    await warn(5)
    assert await warnings() == 0
    await warn(15)
    await warn(15)
    assert await warnings() == 1
    await client.put(
        f"/scheduler/allocations/{lease['allocationId']}/extend",
        headers=auth(token),
        json={"additionalMinutes": 10},
    )
    await warn(15)
    assert await warnings() == 1  # the new expiry is 20 minutes out
    await warn(25)
    assert await warnings() == 2
