"""What each platform message means (``scheduler.domain.inbox``), both spellings included."""

from __future__ import annotations

import uuid

import pytest

from scheduler.domain.errors import InvalidRequest
from scheduler.domain.inbox import (
    ROUTING_KEYS,
    DeviceTrouble,
    NothingToDo,
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
