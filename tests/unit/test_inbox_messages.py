"""What each platform message means (``scheduler.domain.inbox``), both spellings included."""

from __future__ import annotations

import uuid

import pytest

from scheduler.domain.errors import InvalidRequest
from scheduler.domain.inbox import (
    ROUTING_KEYS,
    BillingSettled,
    BillingTrouble,
    DeviceTrouble,
    LimitUser,
    NothingToDo,
    Payer,
    ReinstateUser,
    SuspendUser,
    message_id_of,
    read_message,
)

DEVICE = uuid.uuid4()


@pytest.mark.parametrize(
    ("key", "body", "action"),
    [
        (
            "user.suspended",
            {"userId": "u1", "reason": "fraud"},
            SuspendUser("u1", "suspended", "fraud"),
        ),
        (
            "user.deleted",
            {"userId": "u1"},
            SuspendUser("u1", "deleted", "user deleted by the platform"),
        ),
        ("user.activated", {"userId": "u1"}, ReinstateUser("u1")),
        (
            "device.failed",
            {"deviceId": str(DEVICE), "reason": "adb lost"},
            DeviceTrouble(DEVICE, True, "adb lost"),
        ),
        (
            "device.deleted",
            {"deviceId": str(DEVICE)},
            DeviceTrouble(DEVICE, True, "device deleted"),
        ),
        (
            "device.maintenance",
            {"deviceId": str(DEVICE), "maintenanceType": "firmware"},
            DeviceTrouble(DEVICE, True, "platform maintenance: firmware"),
        ),
        (
            "device.status_changed",
            {"deviceId": str(DEVICE), "oldStatus": "running", "newStatus": "ERROR"},
            DeviceTrouble(DEVICE, True, "platform status error"),
        ),
        (
            "device.status_changed",
            {"deviceId": str(DEVICE), "newStatus": "running"},
            DeviceTrouble(DEVICE, False, "platform status running"),
        ),
        (
            "device.status_changed",
            {"deviceId": str(DEVICE), "newStatus": "creating"},
            NothingToDo("device status 'creating' changes nothing here"),
        ),
        ("user.quota_updated", {"userId": "u1", "newQuota": {"maxDevices": 2}}, LimitUser("u1", 2)),
        ("quota.updated", {"userId": "u1", "maxDevices": 0}, LimitUser("u1", 0)),
        (
            "quota.updated",
            {"userId": "u1", "newQuota": {"storageGB": 9}},
            NothingToDo("the new quota sets no device limit"),
        ),
        (
            "quota.exceeded",
            {"userId": "u1", "quotaType": "devices", "current": 5, "limit": 3},
            LimitUser("u1", 3),
        ),
        (
            "user.quota_exceeded",
            {"userId": "u1", "quotaType": "storage", "limit": 3},
            NothingToDo("quota 'storage' is not about devices"),
        ),
        (
            "billing.overdue",
            {"userId": "u1", "overdueDays": 9},
            BillingTrouble(Payer("u1"), True, "billing overdue (9 days)"),
        ),
        (
            "billing.invoice_overdue",
            {"userId": "u1"},
            BillingTrouble(Payer("u1"), True, "billing overdue"),
        ),
        (
            "billing.payment_failed",
            {"userId": "u1", "reason": "declined"},
            BillingTrouble(Payer("u1"), False, "payment failed: declined"),
        ),
        ("billing.payment_success", {"userId": "u1"}, BillingSettled(Payer("u1"))),
        ("billing.recharged", {"userId": "u1"}, BillingSettled(Payer("u1"))),
        (
            "billing.low_balance",
            {"userId": "u1"},
            NothingToDo("a low balance is the platform's notice to send"),
        ),
        (
            "billing.balance_low",
            {"userId": "u1"},
            NothingToDo("a low balance is the platform's notice to send"),
        ),
    ],
)
def test_each_key_reads_into_its_action(key: str, body: dict[str, str], action: object) -> None:
    assert key in ROUTING_KEYS
    assert read_message(key, body) == action


@pytest.mark.parametrize(
    ("key", "body"),
    [
        ("user.suspended", {}),
        ("user.suspended", {"userId": ""}),
        ("user.suspended", {"userId": 7}),
        ("user.suspended", ["userId"]),
        ("device.failed", {"deviceId": "phone-7"}),
        ("device.status_changed", {"deviceId": str(DEVICE)}),
        ("user.suspended", {"userId": "a\x00b"}),
        ("billing.mystery", {"userId": "u1"}),
        ("quota.updated", {"userId": "u1", "newQuota": {"maxDevices": -1}}),
        ("quota.updated", {"userId": "u1", "newQuota": {"maxDevices": 1.5}}),
        ("quota.exceeded", {"userId": "u1", "quotaType": "devices"}),
        ("billing.overdue", {}),
    ],
)
def test_a_body_that_means_nothing_is_poison(key: str, body: object) -> None:
    with pytest.raises(InvalidRequest):
        read_message(key, body)


def test_a_message_without_an_id_is_known_by_its_key_and_content() -> None:
    assert message_id_of("given", "user.deleted", b"{}") == "given"
    same = message_id_of(None, "user.deleted", b'{"userId": "u"}')
    assert same == message_id_of("", "user.deleted", b'{"userId": "u"}')
    assert same != message_id_of(None, "user.suspended", b'{"userId": "u"}')
