"""Bookings are not free: they count against the tenant's quota for their window, pending
ones are capped, a named device must be schedulable (at booking and at activation), and a
conflict check takes no lock and shows no other tenant's windows."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest

from scheduler.bootstrap import Services
from scheduler.domain.errors import BookingCapReached
from scheduler.domain.identity import Principal, Role
from scheduler.domain.resources import DeviceRequirements
from scheduler.services.housekeeping import Housekeeper, HousekeeperConfig
from scheduler.services.reservations import Reserve
from tests.builders import (
    auth,
    commands_with,
    in_pool,
    new_pool,
    new_tenant,
    new_token,
    run_sql,
    settle,
)
from tests.integration.test_bad_input import assert_problem

pytestmark = pytest.mark.integration


def window(services: Services, minutes_ahead: float, **extra: Any) -> dict[str, Any]:
    start = services.clock() + timedelta(minutes=minutes_ahead)
    return {"startTime": start.isoformat(), "durationMinutes": 60, **extra}


async def test_a_tenant_without_quota_cannot_book_and_bookings_count_for_their_window(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=3)
    specs = {"preferredSpecs": {"labels": pool.label}}
    broke = await new_tenant(client, admin_token, max_devices=0)
    token = await new_token(client, admin_token, broke["id"], "free-rider")
    r = await client.post(
        "/scheduler/reservations", headers=auth(token), json=window(services, 60, **specs)
    )
    assert_problem(r, 403, "quota_exceeded")

    one = await new_tenant(client, admin_token, max_devices=1)
    token = await new_token(client, admin_token, one["id"], "single")
    first = await client.post(
        "/scheduler/reservations", headers=auth(token), json=window(services, 60, **specs)
    )
    assert first.status_code == 201, first.text
    overlapping = await client.post(
        "/scheduler/reservations", headers=auth(token), json=window(services, 90, **specs)
    )
    assert_problem(overlapping, 403, "quota_exceeded")
    later = await client.post(
        "/scheduler/reservations", headers=auth(token), json=window(services, 180, **specs)
    )
    assert later.status_code == 201, later.text
    # a running lease that lasts into a window counts too
    lease = await client.post(
        "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool, durationMinutes=300)
    )
    assert_problem(lease, 403, "quota_exceeded")  # the lease quota is the same device count
    moved = await client.put(
        f"/scheduler/reservations/{later.json()['id']}",
        headers=auth(token),
        json={"startTime": window(services, 70)["startTime"]},
    )
    assert_problem(moved, 403, "quota_exceeded")


async def test_pending_bookings_are_capped_per_tenant(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=4)
    tenant = await new_tenant(client, admin_token)
    principal = Principal(uuid.UUID(tenant["id"]), "booker", Role.USER)
    rules = replace(services.config.booking_rules, max_pending=2)
    capped = commands_with(services, replace(services.config, booking_rules=rules))
    start = services.clock() + timedelta(hours=1)
    booking = Reserve(None, start, 30, DeviceRequirements(labels=pool.label), None, 15)
    for _ in range(2):
        await capped.handle(booking, principal)
    with pytest.raises(BookingCapReached):
        await capped.handle(booking, principal)


async def test_a_named_device_must_be_schedulable_when_booked(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "picky")
    cordoned = await new_pool(client, admin_token, devices=1)
    r = await client.post(
        f"/scheduler/nodes/{cordoned.node['id']}/cordon", headers=auth(admin_token)
    )
    assert r.status_code == 200
    device = cordoned.devices[0]["id"]
    r = await client.post(
        "/scheduler/reservations", headers=auth(token), json=window(services, 60, deviceId=device)
    )
    assert_problem(r, 409, "device_not_schedulable")
    assert "cordoned" in r.json()["detail"]
    r = await client.post(
        "/scheduler/reservations/check-conflict",
        headers=auth(token),
        json=window(services, 60, deviceId=device),
    )
    assert_problem(r, 409, "device_not_schedulable")

    tainted = await client.post(
        "/scheduler/nodes",
        headers=auth(admin_token),
        json={
            "name": f"tainted-{uuid.uuid4().hex[:8]}",
            "taints": [{"key": "dedicated", "value": "ci"}],
            "capacity": {"cpuCores": 8, "memoryMB": 8192, "storageMB": 65536, "maxDevices": 1},
        },
    )
    added = await client.post(
        f"/scheduler/nodes/{tainted.json()['id']}/devices",
        headers=auth(admin_token),
        json={
            "count": 1,
            "spec": {"cpuCores": 1, "memoryMB": 1024, "storageMB": 4096, "androidVersion": "13"},
        },
    )
    r = await client.post(
        "/scheduler/reservations",
        headers=auth(token),
        json=window(services, 60, deviceId=added.json()[0]["id"]),
    )
    assert_problem(r, 409, "device_not_schedulable")
    assert "dedicated=ci:NoSchedule" in r.json()["detail"]


async def test_a_named_device_cordoned_before_the_start_fails_the_booking(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=2)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "pinned")
    device = pool.devices[0]["id"]
    booked = await client.post(
        "/scheduler/reservations", headers=auth(token), json=window(services, 30, deviceId=device)
    )
    assert booked.status_code == 201, booked.text
    await client.post(f"/scheduler/nodes/{pool.node['id']}/cordon", headers=auth(admin_token))
    await run_sql(
        services,
        "UPDATE reservations SET start_time = now(), prewarm_at = now(),"
        " end_time = now() + interval '30 minutes' WHERE id = %(id)s",
        {"id": uuid.UUID(booked.json()["id"])},
    )
    config = HousekeeperConfig(relay_seconds=0.01, max_sleep_seconds=0.05, retention_seconds=60)
    keeper = Housekeeper(
        services.uow, services.events, services.lifecycle, services.queue, config, "hk"
    )
    for second in range(3):
        await keeper.tick(services.clock() + timedelta(seconds=second))
        await settle(services)

    r = await client.get(f"/scheduler/reservations/{booked.json()['id']}", headers=auth(token))
    assert (r.json()["status"], r.json()["reason"]) == ("failed", "device_not_schedulable")


async def test_a_conflict_check_holds_no_lock_and_shows_only_the_callers_windows(
    client: httpx.AsyncClient, admin_token: str, services: Services, database_url: str
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    device = pool.devices[0]["id"]
    mine = await new_tenant(client, admin_token)
    theirs = await new_tenant(client, admin_token)
    me = await new_token(client, admin_token, mine["id"], "me")
    them = await new_token(client, admin_token, theirs["id"], "them")
    taken = await client.post(
        "/scheduler/reservations", headers=auth(them), json=window(services, 60, deviceId=device)
    )
    assert taken.status_code == 201

    async with await psycopg.AsyncConnection.connect(
        database_url.replace("postgresql+psycopg://", "postgresql://")
    ) as holder:
        await holder.execute("SELECT 1 FROM devices WHERE id = %s FOR UPDATE", (device,))
        r = await asyncio.wait_for(
            client.post(
                "/scheduler/reservations/check-conflict",
                headers=auth(me),
                json=window(services, 60, deviceId=device),
            ),
            timeout=5,
        )
    assert r.status_code == 200, r.text
    assert r.json()["available"] is False and r.json()["conflicts"] == []
    own = await client.post(
        "/scheduler/reservations/check-conflict",
        headers=auth(them),
        json=window(services, 60, deviceId=device),
    )
    assert [c["deviceId"] for c in own.json()["conflicts"]] == [device]
    refused = await client.post(
        "/scheduler/reservations", headers=auth(me), json=window(services, 60, deviceId=device)
    )
    assert_problem(refused, 409, "reservation_conflict")
    assert refused.json()["conflicts"] == [] and "other tenants" in refused.json()["detail"]


async def test_dry_runs_of_users_are_capped_and_admins_are_not(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "planner")
    many = {"requests": [{}] * 101, "maxTimeSeconds": 1}
    long = {"requests": [{}], "maxTimeSeconds": 5}
    for body in (many, long):
        r = await client.post("/scheduler/schedule/batch", headers=auth(token), json=body)
        assert_problem(r, 403, "forbidden")
        r = await client.post("/scheduler/schedule/batch", headers=auth(admin_token), json=body)
        assert r.status_code == 200, r.text
    ok = await client.post(
        "/scheduler/schedule/batch",
        headers=auth(token),
        json={"requests": [{}] * 100, "maxTimeSeconds": 1},
    )
    assert ok.status_code == 200
