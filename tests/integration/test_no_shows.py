"""Check-in of bookings on real PostgreSQL: a started booking whose user checks in keeps its
lease to the end; one who does not within the window is a no-show, its lease revoked and
billed to that moment, exactly once even raced by a release and with two housekeepers."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.services.command_path import run_unit
from scheduler.services.housekeeping import run_no_shows
from scheduler.services.reservations import end_no_shows, prewarm_devices, start_due_reservation
from tests.builders import auth, new_pool, new_tenant, new_token, outbox_payloads, run_sql, settle

pytestmark = pytest.mark.integration


async def _started_booking(
    client: httpx.AsyncClient, admin: str, services: Services, **body: Any
) -> tuple[dict[str, Any], str]:
    """A booking made for later, moved to have started a minute ago, and activated."""
    pool = await new_pool(client, admin, devices=1)
    tenant = await new_tenant(client, admin)
    token = await new_token(client, admin, tenant["id"], "booker")
    start = services.clock() + timedelta(hours=1)
    r = await client.post(
        "/scheduler/reservations",
        headers=auth(token),
        json={
            "startTime": start.isoformat(),
            "durationMinutes": 60,
            "preferredSpecs": {"labels": pool.label},
            **body,
        },
    )
    assert r.status_code == 201, r.text
    booking = r.json()
    await run_sql(
        services,
        "UPDATE reservations SET start_time = now(), prewarm_at = now(),"
        " end_time = now() + interval '60 minutes' WHERE id = %(id)s",
        {"id": booking["id"]},
    )
    # the housekeeper's work without its ledger (whose ticks other tests' runs may hold)
    now = services.clock()
    await run_unit(
        services.uow, prewarm_devices, now=now, lifecycle=services.lifecycle, queue=services.queue
    )
    await settle(services)  # the pre-warm reset
    await run_unit(
        services.uow,
        start_due_reservation,
        now=now,
        lifecycle=services.lifecycle,
        queue=services.queue,
    )
    await settle(services)
    active = await client.get(f"/scheduler/reservations/{booking['id']}", headers=auth(token))
    assert active.json()["status"] == "active", active.text
    return active.json(), token


async def _sweep(services: Services, *, after_minutes: float) -> int:
    """The no-show sweep's work at ``after_minutes`` past now (without its ledger tick)."""
    now = services.clock() + timedelta(minutes=after_minutes)
    return await run_unit(
        services.uow, end_no_shows, now=now, lifecycle=services.lifecycle, queue=services.queue
    )


async def _housekeeper_sweep(services: Services, *, now: datetime, owner: str) -> int:
    """The sweep as a housekeeper runs it: under the ledger's tick of ``now``."""
    return await run_no_shows(
        services.uow, services.lifecycle, services.queue, now=now, owner=owner
    )


async def test_a_booking_not_checked_in_in_time_is_a_no_show_and_its_lease_revoked(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    booking, token = await _started_booking(client, admin_token, services, checkInMinutes=10)
    assert booking["checkInMinutes"] == 10 and booking["checkedInAt"] is None

    assert await _sweep(services, after_minutes=5) == 0  # still within its window
    assert await _sweep(services, after_minutes=10) == 1

    after = (
        await client.get(f"/scheduler/reservations/{booking['id']}", headers=auth(token))
    ).json()
    assert (after["status"], after["reason"]) == ("no_show", "no_show")
    lease = (
        await client.get(f"/scheduler/allocations/{booking['allocationId']}", headers=auth(token))
    ).json()
    assert (lease["status"], lease["endReason"]) == ("revoked", "no_show")
    records = await run_sql(
        services,
        "SELECT end_reason FROM usage_records WHERE allocation_id = %(a)s",
        {"a": booking["allocationId"]},
    )
    assert [r["end_reason"] for r in records] == ["no_show"]
    assert len(await outbox_payloads(services, "reservation.no_show", booking["id"])) == 1
    late = await client.post(
        f"/scheduler/reservations/{booking['id']}/check-in", headers=auth(token)
    )
    assert (late.status_code, late.json()["code"]) == (409, "reservation_not_active")
    await settle(services)


async def test_a_checked_in_booking_keeps_its_lease(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    booking, token = await _started_booking(client, admin_token, services, checkInMinutes=10)

    r = await client.post(f"/scheduler/reservations/{booking['id']}/check-in", headers=auth(token))
    again = await client.post(
        f"/scheduler/reservations/{booking['id']}/check-in", headers=auth(token)
    )

    assert r.status_code == 200, r.text
    assert r.json()["checkedInAt"] is not None
    assert again.json()["checkedInAt"] == r.json()["checkedInAt"]  # the first one counts
    assert len(await outbox_payloads(services, "reservation.checked_in", booking["id"])) == 1
    assert await _sweep(services, after_minutes=30) == 0
    lease = (
        await client.get(f"/scheduler/allocations/{booking['allocationId']}", headers=auth(token))
    ).json()
    assert lease["status"] == "active"


async def test_without_a_check_in_window_a_booking_is_never_a_no_show(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    booking, _ = await _started_booking(client, admin_token, services)

    assert booking["checkInMinutes"] == 0 and booking["checkInBy"] is None
    assert await _sweep(services, after_minutes=50) == 0


async def test_a_pending_booking_cannot_be_checked_in_and_bad_windows_are_refused(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "early")
    body = {
        "startTime": (services.clock() + timedelta(hours=2)).isoformat(),
        "durationMinutes": 30,
        "preferredSpecs": {"labels": pool.label},
    }
    for bad in (-1, 241, "soon"):
        r = await client.post(
            "/scheduler/reservations", headers=auth(token), json={**body, "checkInMinutes": bad}
        )
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text
    booking = (
        await client.post(
            "/scheduler/reservations", headers=auth(token), json={**body, "checkInMinutes": 5}
        )
    ).json()
    r = await client.post(f"/scheduler/reservations/{booking['id']}/check-in", headers=auth(token))
    assert (r.status_code, r.json()["code"]) == (409, "reservation_not_active")
    other = await new_token(client, admin_token, (await new_tenant(client, admin_token))["id"], "x")
    r = await client.post(f"/scheduler/reservations/{booking['id']}/check-in", headers=auth(other))
    assert (r.status_code, r.json()["code"]) == (404, "reservation_not_found")


async def test_a_no_show_raced_by_a_release_and_two_housekeepers_ends_the_lease_once(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    booking, token = await _started_booking(client, admin_token, services, checkInMinutes=1)
    release = client.post(
        "/scheduler/devices/release",
        headers=auth(token),
        json={"allocationId": booking["allocationId"]},
    )

    # a moment no other test's sweep ran at (the ledger keeps one run per tick)
    now = services.clock() + timedelta(minutes=2, seconds=random.randrange(3000))
    results = await asyncio.gather(
        release,
        _housekeeper_sweep(services, now=now, owner="hk-1"),
        _housekeeper_sweep(services, now=now, owner="hk-2"),
    )

    released = results[0]
    assert released.status_code in (200, 404), released.text  # 404: no active lease left
    records = await run_sql(
        services,
        "SELECT end_reason FROM usage_records WHERE allocation_id = %(a)s",
        {"a": booking["allocationId"]},
    )
    assert len(records) == 1
    after = (
        await client.get(f"/scheduler/reservations/{booking['id']}", headers=auth(token))
    ).json()
    expected = "no_show" if records[0]["end_reason"] == "no_show" else "completed"
    assert after["status"] == expected
    assert sum(results[1:]) == (1 if expected == "no_show" else 0)
    await settle(services)
