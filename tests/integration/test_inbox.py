"""The inbox on real PostgreSQL (issue 12 §3): a platform message applied exactly once — a
redelivered or concurrent copy does nothing — a suspended user loses its leases (one usage
record each), waits, bookings and tokens and is refused until activated, a device the
platform reports failed is taken out of service, and a poison message is dead at once."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.services.housekeeping import run_user_standing
from scheduler.services.inbox import Inbox, Received, Verdict
from tests.builders import (
    auth,
    in_pool,
    leases_of,
    new_pool,
    new_tenant,
    new_token,
    run_sql,
    unique,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def inbox(services: Services) -> Inbox:
    return Inbox(services.commands, services.uow, services.clock, max_attempts=3)


async def delivered(inbox: Inbox, *message: Any) -> Received:
    """As a transport delivers: again while the verdict is to retry."""
    for _ in range(5):
        received = await inbox.receive(*message)
        if received.verdict is not Verdict.RETRY:
            return received
    return received


def message(**body: Any) -> bytes:
    return json.dumps(body).encode()


async def _user_with_everything(
    client: httpx.AsyncClient, admin: str, services: Services, user: str
) -> dict[str, Any]:
    """A user holding two leases, a waiting entry and a booking, with a token."""
    pool = await new_pool(client, admin, devices=2)
    tenant = await new_tenant(client, admin)
    token = await new_token(client, admin, tenant["id"], user)
    leases = [
        await client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
        for _ in range(2)
    ]
    assert all(r.status_code == 201 for r in leases), [r.text for r in leases]
    waiting = await client.post(
        "/scheduler/devices/allocate",
        headers=auth(token),
        json=in_pool(pool, queueIfUnavailable=True),
    )
    assert waiting.status_code == 202, waiting.text
    other = await new_pool(client, admin, devices=1)
    start = (services.clock() + timedelta(hours=2)).isoformat()
    booking = await client.post(
        "/scheduler/reservations",
        headers=auth(token),
        json={"startTime": start, "durationMinutes": 30, "preferredSpecs": {"labels": other.label}},
    )
    assert booking.status_code == 201, booking.text
    return {
        "token": token,
        "leases": [r.json()["allocationId"] for r in leases],
        "entry": waiting.json()["id"],
        "booking": booking.json()["id"],
    }


async def test_a_suspended_user_loses_everything_once_and_is_refused_until_activated(
    inbox: Inbox, client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    user = unique("platform-user")
    held = await _user_with_everything(client, admin_token, services, user)
    body = message(userId=user, reason="abuse")

    first = await delivered(inbox, "m-" + user, "rabbitmq", "user.suspended", body)
    again = await delivered(inbox, "m-" + user, "rabbitmq", "user.suspended", body)

    assert first.verdict is Verdict.DONE and "2 leases ended" in first.detail, first
    assert again.verdict is Verdict.DONE and again.detail.startswith("duplicate"), again
    leases = await run_sql(
        services,
        "SELECT a.status, a.end_reason, (SELECT count(*) FROM usage_records u"
        " WHERE u.allocation_id = a.id) AS records FROM allocations a WHERE a.id = ANY(%(ids)s)",
        {"ids": [uuid.UUID(i) for i in held["leases"]]},
    )
    assert [(r["status"], r["end_reason"], r["records"]) for r in leases] == [
        ("revoked", "user_suspended", 1)
    ] * 2
    entry = await run_sql(
        services, "SELECT status FROM queue_entries WHERE id = %(id)s", {"id": held["entry"]}
    )
    booking = await run_sql(
        services, "SELECT status FROM reservations WHERE id = %(id)s", {"id": held["booking"]}
    )
    assert (entry[0]["status"], booking[0]["status"]) == ("cancelled", "cancelled")
    refused = await client.get("/scheduler/allocations", headers=auth(held["token"]))
    assert refused.status_code == 401  # its token is revoked

    # a new token for the user is refused as long as the suspension lasts
    tenant = await new_tenant(client, admin_token)
    fresh = await new_token(client, admin_token, tenant["id"], user)
    r = await client.get("/scheduler/allocations", headers=auth(fresh))
    assert r.status_code == 403 and r.json()["code"] == "user_suspended", r.text

    back = await delivered(inbox, "a-" + user, "redis", "user.activated", message(userId=user))
    assert back.verdict is Verdict.DONE and "reinstated" in back.detail
    r = await client.get("/scheduler/allocations", headers=auth(fresh))
    assert r.status_code == 200, r.text


async def test_copies_of_one_message_delivered_at_once_apply_it_once(
    inbox: Inbox, client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    user = unique("platform-user")
    held = await _user_with_everything(client, admin_token, services, user)
    body = message(userId=user)

    results = await asyncio.gather(
        *(delivered(inbox, "dup-" + user, "rabbitmq", "user.deleted", body) for _ in range(4))
    )

    assert all(r.verdict is Verdict.DONE for r in results)
    assert sum(not r.detail.startswith("duplicate") for r in results) == 1
    records = await run_sql(
        services,
        "SELECT count(*) AS n FROM usage_records WHERE allocation_id = ANY(%(ids)s)",
        {"ids": [uuid.UUID(i) for i in held["leases"]]},
    )
    assert records[0]["n"] == 2
    events = await run_sql(
        services,
        "SELECT count(*) AS n FROM outbox_events WHERE type = 'user.suspended' AND aggregate_id = %(u)s",
        {"u": user},
    )
    assert events[0]["n"] == 1


async def test_a_message_without_an_id_is_recognised_by_its_content(
    inbox: Inbox, services: Services
) -> None:
    from scheduler.domain.inbox import message_id_of

    body = message(userId=unique("nobody"))
    first_id = message_id_of(None, "user.activated", body)
    assert message_id_of(None, "user.activated", body) == first_id
    first = await inbox.receive(first_id, "redis", "user.activated", body)
    again = await inbox.receive(first_id, "redis", "user.activated", body)
    assert "not suspended" in first.detail and again.detail.startswith("duplicate")


@pytest.mark.parametrize(
    ("key", "body", "why"),
    [
        ("user.suspended", b"{not json", "JSON"),
        ("user.suspended", message(reason="no user"), "userId"),
        ("device.failed", message(deviceId="dev-1"), "UUID"),
        ("user.renamed", message(userId="u"), "does not handle"),
    ],
)
async def test_a_poison_message_is_dead_at_once_with_its_reason(
    inbox: Inbox, services: Services, key: str, body: bytes, why: str
) -> None:
    message_id = unique("poison")
    received = await inbox.receive(message_id, "rabbitmq", key, body)
    assert received.verdict is Verdict.DEAD and why in received.detail, received
    row = await run_sql(
        services,
        "SELECT attempts, dead_at IS NOT NULL AS dead, last_error FROM inbox_messages"
        " WHERE message_id = %(id)s",
        {"id": message_id},
    )
    assert (row[0]["attempts"], row[0]["dead"]) == (1, True) and why in row[0]["last_error"]
    again = await inbox.receive(message_id, "rabbitmq", key, body)
    assert again.verdict is Verdict.DEAD


async def test_a_device_the_platform_reports_failed_leaves_service_and_its_lease_moves(
    inbox: Inbox, client: httpx.AsyncClient, admin_token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=2)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "mover")
    grant = await client.post(
        "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
    )
    device = grant.json()["deviceId"]

    failed = await delivered(
        inbox,
        unique("m"),
        "rabbitmq",
        "device.status_changed",
        message(deviceId=device, oldStatus="running", newStatus="error"),
    )
    ignored = await delivered(
        inbox,
        unique("m"),
        "rabbitmq",
        "device.status_changed",
        message(deviceId=device, oldStatus="error", newStatus="creating"),
    )
    unknown = await delivered(
        inbox, unique("m"), "rabbitmq", "device.deleted", message(deviceId=str(uuid.uuid4()))
    )

    assert failed.verdict is Verdict.DONE and "failed (1 leases moved)" in failed.detail
    assert "changes nothing" in ignored.detail and "not in this fleet" in unknown.detail
    lease = await client.get(
        f"/scheduler/allocations/{grant.json()['allocationId']}", headers=auth(token)
    )
    assert lease.json()["deviceId"] != device and lease.json()["status"] == "active"


_LATER = itertools.count(1)


async def _standing_due(services: Services, seconds: float) -> int:
    """The housekeeper's standing job, run ``seconds`` from now (and a few more each call:
    the job's ledger runs each second's tick once, and two tests may ask for the same
    second)."""
    return await run_user_standing(
        services.uow,
        services.lifecycle,
        services.queue,
        now=services.clock() + timedelta(seconds=seconds + 3 * next(_LATER)),
        owner=unique("hk"),
    )


async def test_a_lowered_device_limit_refuses_new_leases_and_ends_the_oldest_after_the_grace(
    inbox: Inbox, client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    user = unique("platform-user")
    pool = await new_pool(client, admin_token, devices=4)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], user)
    leases = []
    for _ in range(3):
        r = await client.post(
            "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
        )
        leases.append(r.json()["allocationId"])

    noticed = await delivered(
        inbox,
        unique("q"),
        "rabbitmq",
        "quota.updated",
        message(userId=user, newQuota={"maxDevices": 1}),
    )
    refused = await client.post(
        "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
    )
    early = await _standing_due(services, 1)
    await _standing_due(services, services.config.standing.quota_grace.total_seconds() + 1)

    assert noticed.verdict is Verdict.DONE and "2 end at" in noticed.detail, noticed
    assert refused.status_code == 403 and refused.json()["code"] == "user_device_limit"
    assert early == 0
    rows = await run_sql(
        services,
        "SELECT a.id::text AS id, a.status, a.end_reason, (SELECT count(*) FROM usage_records u"
        " WHERE u.allocation_id = a.id) AS records FROM allocations a WHERE a.id = ANY(%(ids)s)"
        " ORDER BY a.allocated_at",
        {"ids": [uuid.UUID(i) for i in leases]},
    )
    assert [(r["status"], r["end_reason"], r["records"]) for r in rows] == [
        ("revoked", "user_limit", 1),
        ("revoked", "user_limit", 1),
        ("active", None, 0),
    ]
    notice = await run_sql(
        services,
        "SELECT payload FROM outbox_events WHERE type = 'user.limit_set' AND aggregate_id = %(u)s",
        {"u": user},
    )
    assert notice[0]["payload"]["activeLeases"] == 3 and notice[0]["payload"]["excessEndsAt"]


async def test_a_user_s_limit_holds_against_concurrent_grants(
    inbox: Inbox, client: httpx.AsyncClient, admin_token: str
) -> None:
    user = unique("platform-user")
    pool = await new_pool(client, admin_token, devices=6)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], user)
    await delivered(
        inbox,
        unique("q"),
        "redis",
        "user.quota_exceeded",
        message(userId=user, quotaType="devices", current=0, limit=2),
    )

    answers = await asyncio.gather(
        *(
            client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
            for _ in range(6)
        )
    )

    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 201, 403, 403, 403, 403], [r.text for r in answers]


async def test_overdue_billing_suspends_after_the_grace_and_a_payment_reinstates(
    inbox: Inbox, client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    late, careful = unique("late-payer"), unique("careful-payer")
    late_leases = await leases_of(client, admin_token, late, 1)
    for _ in range(3):
        await delivered(
            inbox,
            unique("b"),
            "rabbitmq",
            "billing.payment_failed",
            message(userId=careful, amount=10, reason="card declined"),
        )
    await delivered(inbox, unique("b"), "rabbitmq", "billing.recharged", message(userId=careful))
    warned = await delivered(
        inbox,
        unique("b"),
        "rabbitmq",
        "billing.invoice_overdue",
        message(userId=late, overdueAmount=12.5, overdueDays=9),
    )
    assert warned.verdict is Verdict.DONE and "to be suspended at" in warned.detail

    grace = services.config.standing.overdue_grace.total_seconds()
    assert await _standing_due(services, grace / 2) == 0
    assert await _standing_due(services, grace + 1) == 1  # the late payer only

    suspended = await run_sql(
        services,
        "SELECT user_id, cause FROM user_suspensions WHERE user_id = ANY(%(u)s)",
        {"u": [late, careful]},
    )
    assert [(r["user_id"], r["cause"]) for r in suspended] == [(late, "billing")]
    assert await _ended(services, late_leases) == [("revoked", "billing_overdue")]

    paid = await delivered(
        inbox, unique("b"), "redis", "billing.payment_success", message(userId=late)
    )
    assert paid.detail.endswith("settled and reinstated"), paid
    assert not await run_sql(
        services, "SELECT 1 FROM user_suspensions WHERE user_id = %(u)s", {"u": late}
    )


async def _ended(services: Services, lease_ids: list[str]) -> list[tuple[str, str]]:
    rows = await run_sql(
        services,
        "SELECT status, end_reason FROM allocations WHERE id = ANY(%(ids)s)",
        {"ids": [uuid.UUID(i) for i in lease_ids]},
    )
    return [(r["status"], r["end_reason"]) for r in rows]


async def test_a_tenant_s_lowered_quota_freezes_it_then_ends_its_oldest_leases(
    inbox: Inbox, client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=4)
    tenant = await new_tenant(client, admin_token, max_devices=10)
    tokens = [await new_token(client, admin_token, tenant["id"], unique("u")) for _ in range(3)]
    leases = []
    for token in tokens:
        r = await client.post(
            "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
        )
        leases.append(r.json()["allocationId"])

    limited = await delivered(
        inbox,
        unique("q"),
        "rabbitmq",
        "quota.updated",
        message(tenantId=tenant["name"], newQuota={"maxDevices": 1}),
    )
    frozen = await client.get(f"/scheduler/admin/tenants/{tenant['id']}", headers=auth(admin_token))
    refused = await client.post(
        "/scheduler/devices/allocate", headers=auth(tokens[0]), json=in_pool(pool)
    )
    await _standing_due(services, services.config.standing.quota_grace.total_seconds() + 1)
    after = await client.get(f"/scheduler/admin/tenants/{tenant['id']}", headers=auth(admin_token))

    assert "2 end at" in limited.detail, limited
    assert frozen.json()["quota"]["maxDevices"] == 3
    assert refused.status_code == 403 and refused.json()["code"] == "quota_exceeded"
    assert await _ended(services, leases[:2]) == [("revoked", "user_limit")] * 2
    assert await _ended(services, leases[2:]) == [("active", None)]
    assert after.json()["quota"]["maxDevices"] == 1


async def test_a_tenant_overdue_is_suspended_whole_after_the_grace_until_it_pays(
    inbox: Inbox, client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=2)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], unique("u"))
    grant = await client.post(
        "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
    )

    await delivered(
        inbox, unique("b"), "rabbitmq", "billing.overdue", message(tenantId=tenant["name"])
    )
    await _standing_due(services, services.config.standing.overdue_grace.total_seconds() + 1)
    refused = await client.get("/scheduler/allocations", headers=auth(token))
    paid = await delivered(
        inbox, unique("b"), "redis", "billing.recharged", message(tenantId=tenant["name"])
    )
    back = await client.get("/scheduler/allocations", headers=auth(token))

    assert await _ended(services, [grant.json()["allocationId"]]) == [
        ("revoked", "billing_overdue")
    ]
    assert refused.status_code == 403 and refused.json()["code"] == "user_suspended", refused.text
    assert paid.detail.endswith("settled and reinstated"), paid
    assert back.status_code == 200, back.text  # its tokens were kept
