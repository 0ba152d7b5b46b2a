"""Bookings on real PostgreSQL: never double-booked (racing transactions), backfill that
never runs into a booking, extensions that stop at the next booking, and activation exactly
once with two housekeepers."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from datetime import timedelta

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.services.housekeeping import Housekeeper, HousekeeperConfig
from tests.builders import auth, in_pool, new_pool, new_tenant, new_token, run_sql

pytestmark = pytest.mark.integration


def iso(services: Services, minutes: float) -> str:
    return (services.clock() + timedelta(minutes=minutes)).isoformat()


async def test_concurrent_bookings_of_one_window_get_at_most_one_device_each(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=4)
    tenant = await new_tenant(client, admin_token)
    tokens = [await new_token(client, admin_token, tenant["id"], f"booker-{i}") for i in range(20)]
    body = {
        "startTime": iso(services, 60),
        "durationMinutes": 60,
        "preferredSpecs": {"labels": pool.label},
    }
    responses = await asyncio.gather(
        *(client.post("/scheduler/reservations", headers=auth(t), json=body) for t in tokens)
    )
    codes = Counter(r.status_code for r in responses)
    assert codes == Counter({201: 4, 409: 16}), codes
    booked = [r.json()["deviceId"] for r in responses if r.status_code == 201]
    assert len(set(booked)) == 4
    refused = next(r for r in responses if r.status_code == 409).json()
    assert refused["code"] == "reservation_conflict" and len(refused["conflicts"]) >= 4


async def test_racing_bookings_of_one_device_in_overlapping_windows_never_overlap(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    device = pool.devices[0]["id"]
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "racer")
    starts = [60 + 10 * i for i in range(8)]  # 30-minute windows, 10 minutes apart
    responses = await asyncio.gather(
        *(
            client.post(
                "/scheduler/reservations",
                headers=auth(token),
                json={"startTime": iso(services, s), "durationMinutes": 30, "deviceId": device},
            )
            for s in starts
        )
    )
    granted = sorted(
        (r.json()["prewarmAt"], r.json()["endTime"]) for r in responses if r.status_code == 201
    )
    assert granted and all(r.status_code in (201, 409) for r in responses)
    for (_, end), (prewarm, _) in itertools.pairwise(granted):
        assert end <= prewarm, granted


async def test_bad_bookings_are_refused_with_clear_codes(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "careless")
    cases = [
        ({"startTime": iso(services, -5), "durationMinutes": 30}, 422, "invalid_request"),
        ({"startTime": iso(services, 60 * 24 * 31), "durationMinutes": 30}, 422, "invalid_request"),
        ({"startTime": iso(services, 60), "durationMinutes": 14}, 422, "validation_error"),
        ({"startTime": "2026-12-01T09:00:00", "durationMinutes": 30}, 422, "invalid_request"),
        (
            {"startTime": iso(services, 60), "durationMinutes": 30, "remindBeforeMinutes": 61},
            422,
            "validation_error",
        ),
        (
            {"startTime": iso(services, 60), "durationMinutes": 30, "deviceId": str(uuid.uuid4())},
            404,
            "device_not_found",
        ),
        (
            {
                "startTime": iso(services, 60),
                "durationMinutes": 30,
                "deviceId": pool.devices[0]["id"],
                "preferredSpecs": {},
            },
            422,
            "validation_error",
        ),
    ]
    for body, status, code in cases:
        r = await client.post("/scheduler/reservations", headers=auth(token), json=body)
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)


async def test_a_booking_lifecycle_move_cancel_list_and_check(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "planner")
    other = await new_token(client, admin_token, (await new_tenant(client, admin_token))["id"], "x")
    body = {
        "startTime": iso(services, 120),
        "durationMinutes": 30,
        "preferredSpecs": {"labels": pool.label},
        "remindBeforeMinutes": 10,
    }
    booking = (await client.post("/scheduler/reservations", headers=auth(token), json=body)).json()
    assert booking["status"] == "pending" and booking["deviceId"] == pool.devices[0]["id"]
    r = await client.post("/scheduler/reservations/check-conflict", headers=auth(token), json=body)
    assert r.json()["available"] is False and r.json()["conflicts"]
    later = {**body, "startTime": iso(services, 240)}
    r = await client.post("/scheduler/reservations/check-conflict", headers=auth(token), json=later)
    assert r.json() == {"available": True, "deviceId": pool.devices[0]["id"], "conflicts": []}
    r = await client.put(
        f"/scheduler/reservations/{booking['id']}",
        headers=auth(token),
        json={"startTime": iso(services, 300), "durationMinutes": 45},
    )
    assert r.status_code == 200 and r.json()["durationMinutes"] == 45
    r = await client.get(f"/scheduler/reservations/{booking['id']}", headers=auth(other))
    assert r.status_code == 404 and r.json()["code"] == "reservation_not_found"
    page = (
        await client.get(
            "/scheduler/reservations", headers=auth(token), params={"status": "pending"}
        )
    ).json()
    assert [b["id"] for b in page["items"]] == [booking["id"]]
    r = await client.post(
        f"/scheduler/reservations/{booking['id']}/cancel",
        headers=auth(token),
        json={"reason": "plans changed"},
    )
    assert r.json()["status"] == "cancelled"
    r = await client.post(f"/scheduler/reservations/{booking['id']}/cancel", headers=auth(token))
    assert r.status_code == 409 and r.json()["code"] == "reservation_not_pending"
    summary = (
        await client.get("/scheduler/reservations/stats/summary", headers=auth(token))
    ).json()
    assert summary["cancelled"] == 1 and summary["pending"] == 0


async def test_backfill_leases_end_before_the_booking_and_extensions_stop_there(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "backfill")
    booking = (
        await client.post(
            "/scheduler/reservations",
            headers=auth(token),
            json={
                "startTime": iso(services, 62),
                "durationMinutes": 30,
                "deviceId": pool.devices[0]["id"],
            },
        )
    ).json()
    # prewarm starts 2 minutes before: a 90-minute lease would run into it, a 30-minute one not
    r = await client.post(
        "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool, durationMinutes=90)
    )
    assert r.status_code == 409 and r.json()["code"] == "no_capacity"
    lease = (
        await client.post(
            "/scheduler/devices/allocate",
            headers=auth(token),
            json=in_pool(pool, durationMinutes=30),
        )
    ).json()
    assert lease["expiresAt"] <= booking["prewarmAt"]
    path = f"/scheduler/allocations/{lease['allocationId']}"
    info = (await client.get(f"{path}/extend-info", headers=auth(token))).json()
    assert info["reason"] == "next_reservation" and 29 <= info["maxAdditionalMinutes"] <= 30
    r = await client.put(f"{path}/extend", headers=auth(token), json={"additionalMinutes": 45})
    assert r.status_code == 409 and r.json()["code"] == "extension_conflicts_with_reservation"
    assert r.json()["maxAdditionalMinutes"] == info["maxAdditionalMinutes"]
    r = await client.put(
        f"{path}/extend",
        headers=auth(token),
        json={"additionalMinutes": info["maxAdditionalMinutes"]},
    )
    assert r.status_code == 200 and r.json()["expiresAt"] <= booking["prewarmAt"]


async def test_an_extension_racing_a_booking_of_the_same_device_never_overlaps(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    for _ in range(5):
        pool = await new_pool(client, admin_token, devices=1)
        tenant = await new_tenant(client, admin_token)
        token = await new_token(client, admin_token, tenant["id"], "both")
        lease = (
            await client.post(
                "/scheduler/devices/allocate",
                headers=auth(token),
                json=in_pool(pool, durationMinutes=30),
            )
        ).json()
        extend, book = await asyncio.gather(
            client.put(
                f"/scheduler/allocations/{lease['allocationId']}/extend",
                headers=auth(token),
                json={"additionalMinutes": 60},
            ),
            client.post(
                "/scheduler/reservations",
                headers=auth(token),
                json={
                    "startTime": iso(services, 45),
                    "durationMinutes": 30,
                    "deviceId": pool.devices[0]["id"],
                },
            ),
        )
        assert sorted([extend.status_code, book.status_code]) in ([200, 409], [201, 409]), (
            extend.text,
            book.text,
        )


async def test_a_booking_starts_once_with_two_housekeepers_and_becomes_a_lease(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=2)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "punctual")
    ids = []
    for _ in range(2):
        r = await client.post(
            "/scheduler/reservations",
            headers=auth(token),
            json={
                "startTime": iso(services, 30),
                "durationMinutes": 30,
                "preferredSpecs": {"labels": pool.label},
            },
        )
        ids.append(r.json()["id"])
    await run_sql(
        services,
        "UPDATE reservations SET start_time = now(), prewarm_at = now(),"
        " end_time = now() + interval '30 minutes' WHERE id = ANY(%(ids)s::uuid[])",
        {"ids": ids},
    )
    config = HousekeeperConfig(relay_seconds=0.01, max_sleep_seconds=0.05, retention_seconds=60)
    keepers = [
        Housekeeper(
            services.uow, services.events, services.lifecycle, services.queue, config, f"hk-{i}"
        )
        for i in range(2)
    ]
    for second in range(10):  # ticks one second apart (the job ledger's tick)
        now = services.clock() + timedelta(seconds=second)
        await asyncio.gather(*(k.tick(now) for k in keepers))
        await services.lifecycle.drain()  # type: ignore[attr-defined]  # the pre-warm reset
        await asyncio.sleep(0.05)
        started = await run_sql(
            services,
            "SELECT count(*) AS n FROM reservations WHERE id = ANY(%(ids)s::uuid[])"
            " AND status <> 'pending'",
            {"ids": ids},
        )
        if second >= 2 and started[0]["n"] == len(ids):
            break
    for booking_id in ids:
        r = (await client.get(f"/scheduler/reservations/{booking_id}", headers=auth(token))).json()
        assert r["status"] == "active" and r["allocationId"], r
        lease = (
            await client.get(f"/scheduler/allocations/{r['allocationId']}", headers=auth(token))
        ).json()
        assert lease["status"] == "active" and lease["deviceId"] == r["deviceId"]
        assert lease["expiresAt"] == r["endTime"]
    rows = await run_sql(
        services,
        "SELECT count(*) AS n FROM allocations a JOIN reservations r"
        " ON r.device_id = a.device_id WHERE r.id = ANY(%(ids)s::uuid[])",
        {"ids": ids},
    )
    assert rows[0]["n"] == 2  # one lease per booking, never two
    events = await run_sql(
        services,
        "SELECT count(*) AS n FROM outbox_events WHERE type ="
        " 'reservation.activated' AND aggregate_id = ANY(%(ids)s)",
        {"ids": ids},
    )
    assert events[0]["n"] == 2


async def test_a_retried_booking_with_its_idempotency_key_books_once(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=3)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "retrying")
    headers = {**auth(token), "Idempotency-Key": uuid.uuid4().hex}
    body = {
        "startTime": iso(services, 90),
        "durationMinutes": 30,
        "preferredSpecs": {"labels": pool.label},
    }
    first = await client.post("/scheduler/reservations", headers=headers, json=body)
    again = await client.post("/scheduler/reservations", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    page = (await client.get("/scheduler/reservations", headers=auth(token))).json()
    assert page["total"] == 1
    other = await client.post(
        "/scheduler/reservations", headers=headers, json={**body, "durationMinutes": 45}
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
