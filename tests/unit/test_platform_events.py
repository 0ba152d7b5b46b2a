"""PhoneFleet's events as the platform's messages: the original's keys and fields."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.adapters.rabbitmq_events import FanOutEventStream
from scheduler.domain import events
from scheduler.domain.events import record_of
from scheduler.domain.platform_events import MAPPINGS, platform_messages

AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
IDS = {name: uuid.uuid4() for name in ("allocation", "device", "node", "tenant", "usage")}


def ended(kind: type[events.AllocationEnded]) -> events.AllocationEnded:
    return kind(
        occurred_at=AT,
        allocation_id=IDS["allocation"],
        device_id=IDS["device"],
        tenant_id=IDS["tenant"],
        user_id="u1",
        ended_at=AT,
        reason="released",
        duration_seconds=61,
        usage_record_id=IDS["usage"],
    )


def test_a_grant_is_device_allocated() -> None:
    granted = events.AllocationGranted(
        occurred_at=AT,
        allocation_id=IDS["allocation"],
        device_id=IDS["device"],
        node_id=IDS["node"],
        tenant_id=IDS["tenant"],
        user_id="u1",
        expires_at=AT + timedelta(minutes=30),
    )
    record = record_of(granted)

    (message,) = platform_messages(record)

    assert message.routing_key == "device.allocated"
    assert message.message_id == str(record.id)
    assert message.body == {
        "type": "device.allocated",
        "timestamp": AT.isoformat(),
        "deviceId": str(IDS["device"]),
        "userId": "u1",
        "tenantId": str(IDS["tenant"]),
        "allocationId": str(IDS["allocation"]),
        "allocatedAt": AT.isoformat(),
        "expiresAt": (AT + timedelta(minutes=30)).isoformat(),
    }


def test_a_release_is_two_messages_and_a_revocation_is_automatic() -> None:
    released = platform_messages(record_of(ended(events.AllocationReleased)))
    revoked = platform_messages(record_of(ended(events.AllocationRevoked)))

    assert [m.routing_key for m in released] == [
        "device.released",
        "scheduler.allocation.released",
    ]
    assert released[0].body["durationSeconds"] == 61
    assert released[1].body["automatic"] is False and revoked[1].body["automatic"] is True
    assert {m.message_id for m in released} == {released[0].message_id}


def test_an_expiry_is_scheduler_allocation_expired() -> None:
    (message,) = platform_messages(record_of(ended(events.AllocationExpired)))

    assert message.routing_key == "scheduler.allocation.expired"
    assert message.body["expiredAt"] == AT.isoformat()


def test_events_the_original_never_sent_make_no_message() -> None:
    registered = events.NodeRegistered(occurred_at=AT, node_id=IDS["node"], name="n1")

    assert platform_messages(record_of(registered)) == []


def test_every_mapped_type_is_an_event_phonefleet_writes() -> None:
    assert set(MAPPINGS) <= {kind.TYPE for kind in events.event_types()}


def test_no_body_carries_null() -> None:
    for kind in (events.AllocationReleased, events.AllocationExpired, events.AllocationRevoked):
        for message in platform_messages(record_of(ended(kind))):
            assert None not in message.body.values()


class Stream:
    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.batches: list[object] = []

    async def publish(self, batch: object) -> None:
        if self.fails:
            raise ConnectionError("broker down")
        self.batches.append(batch)


async def test_a_batch_one_stream_refuses_is_not_sent() -> None:
    redis, rabbit = Stream(), Stream(fails=True)
    batch = [(1, record_of(ended(events.AllocationReleased)))]

    with pytest.raises(ConnectionError):
        await FanOutEventStream(redis, rabbit).publish(batch)  # the relay keeps it unrelayed

    assert redis.batches == [batch]  # and sends it again later: consumers drop by event id
