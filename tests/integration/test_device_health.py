"""Phones and hosts that fail, on real PostgreSQL: a failed device's lease moves to a twin on
another node (same id, expiry and bill) or is revoked and billed to the second; a recovered
device is reset before it is leased again; a reset failing twice fails the device; a silent
node goes offline (its leases move) and comes back with its status; a failure racing a
release ends the lease once; reports are refused to users and bad input."""

from __future__ import annotations

import asyncio
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


async def _lease(client: httpx.AsyncClient, admin: str, pool: Pool) -> tuple[dict[str, Any], str]:
    tenant = await new_tenant(client, admin)
    token = await new_token(client, admin, tenant["id"], "player")
    r = await client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
    assert r.status_code == 201, r.text
    return r.json(), token


async def _report(
    client: httpx.AsyncClient, token: str, device_id: str, status: str
) -> httpx.Response:
    return await client.post(
        f"/scheduler/devices/{device_id}/report",
        headers=auth(token),
        json={"status": status, "reason": "the screen went dark"},
    )


async def _device_status(services: Services, device_id: str) -> str:
    (row,) = await run_sql(
        services, "SELECT status FROM devices WHERE id = %(id)s", {"id": uuid.UUID(device_id)}
    )
    return str(row["status"])


async def test_a_failed_devices_lease_moves_to_a_twin_keeping_its_id_expiry_and_bill(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    first, second = await new_spread_pool(client, admin_token, nodes=2, devices_per_node=1)
    grant, token = await _lease(client, admin_token, first)
    old = grant["deviceId"]

    r = await _report(client, admin_token, old, "failed")

    assert r.status_code == 200, r.text
    (moved,) = r.json()["leases"]
    assert moved["allocationId"] == grant["allocationId"] and moved["outcome"] == "moved"
    lease = (
        await client.get(f"/scheduler/allocations/{grant['allocationId']}", headers=auth(token))
    ).json()
    assert lease["deviceId"] == moved["movedTo"] != old
    assert (lease["status"], lease["expiresAt"]) == ("active", grant["expiresAt"])
    assert await _device_status(services, old) == "failed"
    (event,) = await outbox_payloads(services, "allocation.moved", grant["allocationId"])
    assert (event["fromDeviceId"], event["toDeviceId"]) == (old, moved["movedTo"])
    (twin,) = [d for d in first.devices + second.devices if d["id"] != old]
    assert event["toAdb"] == f"{twin['adbHost']}:{twin['adbPort']}"

    released = await client.post(
        "/scheduler/devices/release",
        headers=auth(token),
        json={"allocationId": grant["allocationId"]},
    )
    assert released.status_code == 200, released.text
    records = await run_sql(
        services,
        "SELECT started_at, device_id::text AS device FROM usage_records"
        " WHERE allocation_id = %(id)s",
        {"id": uuid.UUID(grant["allocationId"])},
    )
    assert [r["device"] for r in records] == [moved["movedTo"]]  # one bill, from the start
    assert records[0]["started_at"].isoformat() == grant["allocatedAt"].replace("Z", "+00:00")


async def test_a_failed_devices_lease_is_revoked_when_no_twin_is_free(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    grant, token = await _lease(client, admin_token, pool)

    r = await _report(client, admin_token, grant["deviceId"], "failed")

    assert r.json()["leases"] == [
        {"allocationId": grant["allocationId"], "outcome": "revoked", "movedTo": None}
    ]
    lease = (
        await client.get(f"/scheduler/allocations/{grant['allocationId']}", headers=auth(token))
    ).json()
    assert (lease["status"], lease["endReason"]) == ("revoked", "device_failed")
    records = await run_sql(
        services,
        "SELECT count(*) AS n FROM usage_records WHERE allocation_id = %(id)s",
        {"id": uuid.UUID(grant["allocationId"])},
    )
    assert records[0]["n"] == 1
    assert await _device_status(services, grant["deviceId"]) == "failed"
    again = await _report(client, admin_token, grant["deviceId"], "failed")
    assert again.status_code == 200 and again.json() == {
        "deviceId": grant["deviceId"],
        "status": "failed",
        "leases": [],
    }


async def test_a_recovered_device_is_reset_before_it_is_leased_again(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    device = pool.devices[0]["id"]
    assert (await _report(client, admin_token, device, "failed")).status_code == 200
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "waiting")
    refused = await client.post(
        "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
    )
    assert refused.status_code == 409  # quarantined: no device to lease

    r = await _report(client, admin_token, device, "recovered")

    assert r.json()["status"] == "resetting"
    await settle(services)
    assert await _device_status(services, device) == "available"
    leased = await client.post(
        "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
    )
    assert leased.status_code == 201 and leased.json()["deviceId"] == device


async def test_a_device_whose_reset_fails_twice_is_failed(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    grant, token = await _lease(client, admin_token, pool)
    agent: Any = services.lifecycle.agent  # type: ignore[attr-defined]
    agent._driver.break_device(uuid.UUID(grant["deviceId"]))

    await client.post(
        "/scheduler/devices/release",
        headers=auth(token),
        json={"allocationId": grant["allocationId"]},
    )
    await settle(services)
    assert await _device_status(services, grant["deviceId"]) == "resetting"  # one failure
    await agent.reset(uuid.UUID(pool.node["id"]), [uuid.UUID(grant["deviceId"])])

    assert await _device_status(services, grant["deviceId"]) == "failed"
    failed = await run_sql(
        services,
        "SELECT payload->>'reason' AS reason FROM outbox_events WHERE type = 'device.failed'"
        " AND aggregate_id = %(id)s",
        {"id": grant["deviceId"]},
    )
    assert [r["reason"] for r in failed] == ["its reset failed twice"]
    agent._driver.heal_device(uuid.UUID(grant["deviceId"]))


async def test_a_failure_racing_a_release_ends_the_lease_once(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    for _ in range(5):
        pool = await new_pool(client, admin_token, devices=1)
        grant, token = await _lease(client, admin_token, pool)

        report, release = await asyncio.gather(
            _report(client, admin_token, grant["deviceId"], "failed"),
            client.post(
                "/scheduler/devices/release",
                headers=auth(token),
                json={"allocationId": grant["allocationId"]},
            ),
        )

        assert report.status_code == 200, report.text
        assert release.status_code in (200, 404), release.text
        records = await run_sql(
            services,
            "SELECT count(*) AS n FROM usage_records WHERE allocation_id = %(id)s",
            {"id": uuid.UUID(grant["allocationId"])},
        )
        assert records[0]["n"] == 1
        assert await _device_status(services, grant["deviceId"]) == "failed"


async def test_a_silent_node_goes_offline_its_leases_move_and_it_comes_back_as_it_was(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    first, _ = await new_spread_pool(client, admin_token, nodes=2, devices_per_node=1)
    grant, token = await _lease(client, admin_token, first)
    node = uuid.UUID(grant["device"]["nodeId"])
    await client.post(f"/scheduler/nodes/{node}/cordon", headers=auth(admin_token))
    now = services.clock()
    await run_sql(  # every other node's agent is alive; this one fell silent 5 minutes ago
        services,
        "UPDATE nodes SET last_heartbeat_at = CASE WHEN id = %(id)s THEN %(then)s ELSE %(now)s END",
        {"then": now - timedelta(minutes=5), "now": now, "id": node},
    )

    async def check() -> tuple[int, int]:
        return await run_node_health(
            services.uow,
            services.lifecycle,
            services.queue,
            now=services.clock(),
            owner=uuid.uuid4().hex,
            offline_after=timedelta(seconds=30),
        )

    gone, _ = await check()

    assert gone == 1
    shown = (await client.get(f"/scheduler/nodes/{node}", headers=auth(admin_token))).json()
    assert shown["status"] == "offline"
    lease = (
        await client.get(f"/scheduler/allocations/{grant['allocationId']}", headers=auth(token))
    ).json()
    assert lease["status"] == "active" and lease["deviceId"] != grant["deviceId"]
    (moved,) = await outbox_payloads(services, "allocation.moved", grant["allocationId"])
    assert moved["reason"] == "node_offline"

    await run_sql(
        services,
        "UPDATE nodes SET last_heartbeat_at = %(now)s WHERE id = %(id)s",
        {"now": services.clock(), "id": node},
    )
    await asyncio.sleep(1.01)  # the next second's ledger tick
    _, back = await check()

    assert back == 1
    shown = (await client.get(f"/scheduler/nodes/{node}", headers=auth(admin_token))).json()
    assert shown["status"] == "cordoned"  # as it was before it went silent


async def test_reports_are_refused_to_users_and_bad_input(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    grant, token = await _lease(client, admin_token, pool)

    by_user = await _report(client, token, grant["deviceId"], "failed")
    unknown = await _report(client, admin_token, str(uuid.uuid4()), "failed")
    bad = await _report(client, admin_token, grant["deviceId"], "melted")
    simulated_by_user = await client.post(
        f"/scheduler/devices/{grant['deviceId']}/simulate",
        headers=auth(token),
        json={"action": "fail"},
    )

    assert by_user.status_code == 403
    assert unknown.status_code == 404 and unknown.json()["code"] == "device_not_found"
    assert bad.status_code == 422
    assert simulated_by_user.status_code == 403


async def test_a_simulated_device_failure_is_reported_and_recovers(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    device = pool.devices[0]["id"]
    admin = auth(admin_token)

    failed = await client.post(
        f"/scheduler/devices/{device}/simulate", headers=admin, json={"action": "fail"}
    )
    assert failed.status_code == 200 and failed.json()["status"] == "failed"
    recovered = await client.post(
        f"/scheduler/devices/{device}/simulate", headers=admin, json={"action": "recover"}
    )
    assert recovered.status_code == 200, recovered.text
    for _ in range(100):  # the agent resets it in the background
        if await _device_status(services, device) == "available":
            break
        await asyncio.sleep(0.05)
    assert await _device_status(services, device) == "available"


async def test_a_failed_devices_lease_may_move_to_a_twin_on_the_same_node(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=2)
    grant, _ = await _lease(client, admin_token, pool)

    r = await _report(client, admin_token, grant["deviceId"], "failed")

    (moved,) = r.json()["leases"]
    (twin,) = [d["id"] for d in pool.devices if d["id"] != grant["deviceId"]]
    assert (moved["outcome"], moved["movedTo"]) == ("moved", twin)


async def test_a_registered_node_heartbeats_until_it_is_failed_on_demand(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=0)
    node = uuid.UUID(pool.node["id"])
    agent: Any = services.lifecycle.agent  # type: ignore[attr-defined]
    assert node in agent.node_ids  # registering the node started its agent

    async def last_heard() -> Any:
        (row,) = await run_sql(
            services, "SELECT last_heartbeat_at AS at FROM nodes WHERE id = %(id)s", {"id": node}
        )
        return row["at"]

    await agent.heartbeat()
    heard = await last_heard()
    assert heard is not None
    failed = await client.post(
        f"/scheduler/nodes/{node}/simulate", headers=auth(admin_token), json={"action": "fail"}
    )
    assert failed.status_code == 200, failed.text
    await agent.heartbeat()
    assert await last_heard() == heard  # silent
    await client.post(
        f"/scheduler/nodes/{node}/simulate", headers=auth(admin_token), json={"action": "recover"}
    )
    await agent.heartbeat()
    assert await last_heard() > heard


async def test_a_failed_devices_bookings_move_at_once_and_a_pinned_one_fails(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=2)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "booker")
    start = (services.clock() + timedelta(hours=2)).isoformat()
    by_spec = await client.post(
        "/scheduler/reservations",
        headers=auth(token),
        json={"startTime": start, "durationMinutes": 30, "preferredSpecs": {"labels": pool.label}},
    )
    assert by_spec.status_code == 201, by_spec.text
    booked = by_spec.json()["deviceId"]
    later = (services.clock() + timedelta(hours=4)).isoformat()
    pinned = await client.post(
        "/scheduler/reservations",
        headers=auth(token),
        json={"startTime": later, "durationMinutes": 30, "deviceId": booked},
    )
    assert pinned.status_code == 201, pinned.text

    await _report(client, admin_token, booked, "failed")

    moved = (
        await client.get(f"/scheduler/reservations/{by_spec.json()['id']}", headers=auth(token))
    ).json()
    failed = (
        await client.get(f"/scheduler/reservations/{pinned.json()['id']}", headers=auth(token))
    ).json()
    assert moved["status"] == "pending" and moved["deviceId"] != booked
    assert (failed["status"], failed["reason"]) == ("failed", "device_failed")
    rows = await run_sql(
        services,
        "SELECT payload->>'deviceId' AS device FROM outbox_events"
        " WHERE type = 'reservation.moved' AND aggregate_id = %(id)s",
        {"id": by_spec.json()["id"]},
    )
    assert [r["device"] for r in rows] == [moved["deviceId"]]
