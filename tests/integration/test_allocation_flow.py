"""The allocate → list → release → reset cycle over the HTTP app, on real PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.services.node_agent import InProcessDeviceLifecycle
from tests.builders import auth, in_pool, new_pool, new_tenant, new_token

pytestmark = pytest.mark.integration


async def wait_for_status(
    client: httpx.AsyncClient, admin: str, pool_label: dict[str, str], count: int
) -> None:
    label = [f"{k}:{v}" for k, v in pool_label.items()]
    for _ in range(200):
        r = await client.get(
            "/scheduler/devices/available", headers=auth(admin), params={"label": label}
        )
        if r.json()["total"] == count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {count} available devices, have {r.json()['total']}")


async def test_a_lease_goes_from_allocate_to_release_and_the_device_comes_back_reset(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=2)
    assert {d["status"] for d in pool.devices} == {"available"}
    tenant = await new_tenant(client, admin_token, max_devices=5)
    user = await new_token(client, admin_token, tenant["id"], "alice")

    r = await client.post(
        "/scheduler/devices/allocate", headers=auth(user), json=in_pool(pool, durationMinutes=15)
    )
    assert r.status_code == 201, r.text
    grant = r.json()
    assert grant["userId"] == "alice" and grant["tenantId"] == tenant["id"]
    assert grant["device"]["status"] == "allocated"
    assert grant["adbPort"] >= 20000
    await wait_for_status(client, admin_token, pool.label, 1)

    r = await client.get(f"/scheduler/allocations/{grant['allocationId']}", headers=auth(user))
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert r.json()["durationMinutes"] == 15
    r = await client.get("/scheduler/allocations", headers=auth(user))
    assert [a["id"] for a in r.json()["items"]] == [grant["allocationId"]]
    r = await client.get(f"/scheduler/admin/tenants/{tenant['id']}", headers=auth(admin_token))
    assert r.json()["usage"]["maxDevices"] == 1

    r = await client.post(
        "/scheduler/devices/release",
        headers=auth(user),
        json={"allocationId": grant["allocationId"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["allocationId"] == grant["allocationId"]
    assert r.json()["durationSeconds"] >= 0 and r.json()["usageRecordId"]

    assert isinstance(services.lifecycle, InProcessDeviceLifecycle)
    await services.lifecycle.drain()
    await wait_for_status(client, admin_token, pool.label, 2)
    r = await client.get(f"/scheduler/admin/tenants/{tenant['id']}", headers=auth(admin_token))
    assert r.json()["usage"]["maxDevices"] == 0
    r = await client.get("/scheduler/allocations/stats", headers=auth(user))
    assert r.json()["released"] == 1 and r.json()["active"] == 0
