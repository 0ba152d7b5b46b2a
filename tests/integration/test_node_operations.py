"""Operating hosts and phones on real PostgreSQL: maintenance keeps running leases and takes
no new ones; a migrate drain moves every lease at once, a wait drain lets them run and
moves what is left at its deadline; edits never shrink a node below its devices; a node or
device in use is not removed unless drained; a lease moves on request; events for each."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.services.housekeeping import run_node_health
from tests.builders import (
    Pool,
    auth,
    in_pool,
    new_pool,
    new_spread_pool,
    new_tenant,
    new_token,
    outbox_payloads,
    run_sql,
    settle,
)

pytestmark = pytest.mark.integration


async def _leases(
    client: httpx.AsyncClient, admin: str, pool: Pool, count: int
) -> tuple[list[dict[str, Any]], str]:
    tenant = await new_tenant(client, admin)
    token = await new_token(client, admin, tenant["id"], "operator-test")
    grants = []
    for _ in range(count):
        r = await client.post(
            "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
        )
        assert r.status_code == 201, r.text
        grants.append(r.json())
    return grants, token


async def _lease_of(client: httpx.AsyncClient, token: str, grant: dict[str, Any]) -> Any:
    r = await client.get(f"/scheduler/allocations/{grant['allocationId']}", headers=auth(token))
    return r.json()


async def test_maintenance_keeps_running_leases_and_takes_no_new_ones(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=2)
    (grant,), token = await _leases(client, admin_token, pool, 1)
    admin = auth(admin_token)

    r = await client.post(
        f"/scheduler/nodes/{pool.node['id']}/maintenance",
        headers=admin,
        json={"enable": True, "reason": "new firmware"},
    )

    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["statusReason"]) == ("maintenance", "new firmware")
    assert (await _lease_of(client, token, grant))["status"] == "active"
    refused = await client.post(
        "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
    )
    assert refused.status_code == 409
    back = await client.post(
        f"/scheduler/nodes/{pool.node['id']}/maintenance", headers=admin, json={"enable": False}
    )
    assert back.json()["status"] == "ready"
    again = await client.post(
        "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
    )
    assert again.status_code == 201
    assert len(await outbox_payloads(services, "node.maintenance", pool.node["id"])) == 2


async def test_a_migrate_drain_moves_every_lease_at_once_and_the_node_is_drained(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    first, second = await new_spread_pool(client, admin_token, nodes=2, devices_per_node=2)
    grants, token = await _leases(client, admin_token, first, 2)
    node = {g["device"]["nodeId"] for g in grants}
    busy = next(iter(node))

    r = await client.post(
        f"/scheduler/nodes/{busy}/drain", headers=auth(admin_token), json={"mode": "migrate"}
    )

    assert r.status_code == 200, r.text
    assert r.json()["status"] == "drained"
    for grant in grants:
        lease = await _lease_of(client, token, grant)
        assert lease["status"] == "active"
        assert lease["deviceId"] not in {
            d["id"] for d in (first if first.node["id"] == busy else second).devices
        }
    assert len(await outbox_payloads(services, "node.drained", busy)) == 1


async def test_a_wait_drain_lets_leases_run_and_moves_what_is_left_at_its_deadline(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    first, _ = await new_spread_pool(client, admin_token, nodes=2, devices_per_node=1)
    (grant,), token = await _leases(client, admin_token, first, 1)
    node = grant["device"]["nodeId"]

    r = await client.post(
        f"/scheduler/nodes/{node}/drain",
        headers=auth(admin_token),
        json={"mode": "wait", "deadlineMinutes": 0},
    )
    assert r.json()["status"] in ("draining", "drained")
    shown = (await client.get(f"/scheduler/nodes/{node}", headers=auth(admin_token))).json()
    if shown["status"] == "draining":
        assert shown["drain"]["leasesLeft"] == 1
        await run_sql(  # every agent alive: only the drain acts
            services, "UPDATE nodes SET last_heartbeat_at = %(now)s", {"now": services.clock()}
        )
        await run_node_health(
            services.uow,
            services.lifecycle,
            services.queue,
            now=services.clock() + timedelta(seconds=1),
            owner=uuid.uuid4().hex,
            offline_after=timedelta(seconds=30),
        )
    shown = (await client.get(f"/scheduler/nodes/{node}", headers=auth(admin_token))).json()
    assert shown["status"] == "drained" and shown["drain"] is None
    lease = await _lease_of(client, token, grant)
    assert lease["status"] == "active" and lease["deviceId"] != grant["deviceId"]


async def test_edits_never_shrink_a_node_below_its_devices(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=3)
    admin = auth(admin_token)
    url = f"/scheduler/nodes/{pool.node['id']}"
    capacity = {"cpuCores": 1024, "memoryMB": 16_000_000, "storageMB": 1_000_000_000}

    too_small = await client.patch(
        url, headers=admin, json={"capacity": {**capacity, "maxDevices": 2}}
    )
    renamed = await client.patch(
        url,
        headers=admin,
        json={
            "name": f"renamed-{uuid.uuid4().hex[:8]}",
            "labels": {**pool.label, "region": "eu"},
            "capacity": {**capacity, "maxDevices": 3},
        },
    )
    device = pool.devices[0]["id"]
    relabelled = await client.patch(
        f"/scheduler/devices/{device}", headers=admin, json={"labels": {"camera": "yes"}}
    )

    assert too_small.status_code == 409 and too_small.json()["code"] == "node_capacity_exceeded"
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["region"] == "eu" and renamed.json()["capacity"]["maxDevices"] == 3
    assert relabelled.status_code == 200 and relabelled.json()["labels"] == {"camera": "yes"}


async def test_a_node_in_use_is_removed_only_after_its_drain(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    first, _ = await new_spread_pool(client, admin_token, nodes=2, devices_per_node=1)
    (grant,), token = await _leases(client, admin_token, first, 1)
    node = grant["device"]["nodeId"]
    admin = auth(admin_token)

    refused = await client.delete(f"/scheduler/nodes/{node}", headers=admin)
    removed = await client.delete(f"/scheduler/nodes/{node}?drain=true", headers=admin)

    assert refused.status_code == 409 and refused.json()["code"] == "node_in_use"
    assert removed.status_code == 200, removed.text
    assert removed.json()["status"] == "removed"
    listed = (await client.get("/scheduler/nodes", headers=admin)).json()
    assert node not in {n["id"] for n in listed}
    (device,) = await run_sql(
        services,
        "SELECT status FROM devices WHERE id = %(id)s",
        {"id": uuid.UUID(grant["deviceId"])},
    )
    assert device["status"] == "retired"
    assert (await _lease_of(client, token, grant))["status"] == "active"  # moved, not lost
    assert len(await outbox_payloads(services, "node.removed", node)) == 1
    gone = await client.get(f"/scheduler/nodes/{node}/usage-trend", headers=admin)
    assert gone.status_code == 200  # its history stays readable


async def test_a_device_is_retired_only_when_free_or_drained(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=2)
    (grant,), token = await _leases(client, admin_token, pool, 1)
    admin = auth(admin_token)

    refused = await client.delete(f"/scheduler/devices/{grant['deviceId']}", headers=admin)
    retired = await client.delete(
        f"/scheduler/devices/{grant['deviceId']}?drain=true", headers=admin
    )
    twice = await client.delete(f"/scheduler/devices/{grant['deviceId']}", headers=admin)

    assert refused.status_code == 409 and refused.json()["code"] == "device_in_use"
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    assert twice.status_code == 404
    lease = await _lease_of(client, token, grant)
    assert lease["status"] == "active" and lease["deviceId"] != grant["deviceId"]


async def test_a_lease_moves_on_request_and_stays_when_nothing_can_take_it(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=2)
    (grant,), token = await _leases(client, admin_token, pool, 1)
    admin = auth(admin_token)

    moved = await client.post(
        f"/scheduler/reschedule/{grant['deviceId']}", headers=admin, json={"reason": "hot spot"}
    )
    assert moved.status_code == 200, moved.text
    new_device = moved.json()["movedTo"]
    assert (await _lease_of(client, token, grant))["deviceId"] == new_device
    await settle(services)  # the device it left is reset
    await _leases(client, admin_token, pool, 1)
    stuck = await client.post(f"/scheduler/reschedule/{new_device}", headers=admin, json={})
    assert stuck.status_code == 409 and stuck.json()["code"] == "no_capacity"
    assert (await _lease_of(client, token, grant))["status"] == "active"
    nothing = await client.post(f"/scheduler/reschedule/{uuid.uuid4()}", headers=admin, json={})
    assert nothing.status_code == 404


async def test_a_rescheduled_lease_goes_to_the_preferred_node_when_it_can(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pools = await new_spread_pool(client, admin_token, nodes=3, devices_per_node=1)
    (grant,), _ = await _leases(client, admin_token, pools[0], 1)
    others = [p.node["id"] for p in pools if p.node["id"] != grant["device"]["nodeId"]]

    for preferred in others:
        r = await client.post(
            f"/scheduler/reschedule/{grant['deviceId']}",
            headers=auth(admin_token),
            json={"preferredNodeId": preferred},
        )
        assert r.status_code == 200, r.text
        (device,) = [d for p in pools for d in p.devices if d["id"] == r.json()["movedTo"]]
        (node,) = [p.node["id"] for p in pools if device in p.devices]
        assert node == preferred
        grant = {**grant, "deviceId": device["id"]}
        await settle(services)


async def test_cordoning_changes_only_a_ready_or_cordoned_node(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    """An uncordon once made any node ready: one in maintenance, draining or removed too."""
    admin = auth(admin_token)
    pool = await new_pool(client, admin_token, devices=1)
    node = f"/scheduler/nodes/{pool.node['id']}"
    assert (await client.post(f"{node}/cordon", headers=admin)).json()["status"] == "cordoned"
    assert (await client.post(f"{node}/uncordon", headers=admin)).json()["status"] == "ready"
    maintenance = await client.post(f"{node}/maintenance", headers=admin, json={"enable": True})
    assert maintenance.status_code == 200, maintenance.text

    for action in ("uncordon", "cordon"):
        r = await client.post(f"{node}/{action}", headers=admin)
        assert r.status_code == 409 and r.json()["code"] == "node_state_conflict", r.text
    assert (await client.get(node, headers=admin)).json()["status"] == "maintenance"

    assert (await client.delete(node, headers=admin)).status_code == 200
    r = await client.post(f"{node}/uncordon", headers=admin)
    assert r.status_code == 404 and r.json()["code"] == "node_not_found", r.text
