"""The one serializer: stored command results and events round-trip exactly, refusals
included, and a command's fingerprint does not depend on how its body was written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.domain import codec, events
from scheduler.domain.allocations import Allocation, AllocationStatus
from scheduler.domain.errors import NoCapacity, ReservationConflict, Unsatisfiable
from scheduler.domain.extensions import ExtensionInfo
from scheduler.domain.fleet import Device, DeviceSpec, DeviceStatus, Node, NodeCapacity, NodeStatus
from scheduler.domain.identity import Role
from scheduler.domain.queueing import QueueEntry, QueueStatus
from scheduler.domain.reservations import Reservation, ReservationStatus
from scheduler.domain.resources import DeviceRequirements, Resources, Taint, Toleration
from scheduler.services.batch import BatchAborted, BatchOutcomes, ItemOutcome
from scheduler.services.command_path import fingerprint
from scheduler.services.commands import (
    AddedDevices,
    AllocateDevice,
    Extended,
    Grant,
    Release,
    TokenIssued,
)
from scheduler.services.queue import Queued

NOW = datetime(2026, 12, 7, 13, 0, 0, 123456, tzinfo=UTC)
SPEC = DeviceSpec(Resources(2.0, 4096, 32768), "14", {"region": "eu"})
DEVICE = Device(
    uuid.uuid4(), uuid.uuid4(), "n-0001", DeviceStatus.ALLOCATED, SPEC, "10.0.0.1", 20001, NOW
)
ALLOCATION = Allocation(
    uuid.uuid4(),
    DEVICE.id,
    uuid.uuid4(),
    "alice",
    AllocationStatus.ACTIVE,
    NOW,
    NOW + timedelta(minutes=30),
    SPEC.resources,
)
REQUIREMENTS = DeviceRequirements(1.5, 2048, 0, "14", {"pool": "a"}, (Toleration("gpu"),))


RESULTS: list[tuple[Any, Any]] = [
    (Grant, Grant(ALLOCATION, DEVICE)),
    (Release, Release(ALLOCATION.id, DEVICE.id, DEVICE.node_id, 61, uuid.uuid4())),
    (Extended, Extended(ALLOCATION, ExtensionInfo(True, 30, 2, 60, 2880, None))),
    (
        Queued,
        Queued(
            QueueEntry(
                uuid.uuid4(),
                uuid.uuid4(),
                "bob",
                "standard",
                30,
                REQUIREMENTS,
                QueueStatus.WAITING,
                NOW,
                NOW + timedelta(minutes=30),
            )
        ),
    ),
    (
        Reservation,
        Reservation(
            uuid.uuid4(),
            uuid.uuid4(),
            "carol",
            DEVICE.id,
            ReservationStatus.PENDING,
            NOW,
            NOW + timedelta(hours=1),
            NOW - timedelta(minutes=2),
            15,
            REQUIREMENTS,
            NOW,
        ),
    ),
    (
        Node,
        Node(
            uuid.uuid4(),
            "node-1",
            NodeCapacity(Resources(64.0, 10**6, 10**8), 40),
            {"zone": "a"},
            (Taint("gpu", "true", "NoSchedule"),),
            NodeStatus.READY,
            "10.0.0.1",
            NOW,
        ),
    ),
    (AddedDevices, AddedDevices([DEVICE, DEVICE])),
    (TokenIssued, TokenIssued(uuid.uuid4(), uuid.uuid4(), "dave", Role.SERVICE, NOW, None)),
    (
        BatchOutcomes[Grant],
        BatchOutcomes(
            [
                ItemOutcome(0, Grant(ALLOCATION, DEVICE)),
                ItemOutcome(1, None, NoCapacity("none free")),
                ItemOutcome(2, None, BatchAborted()),
            ]
        ),
    ),
]


@pytest.mark.parametrize(("kind", "value"), RESULTS, ids=[type(v).__name__ for _, v in RESULTS])
def test_every_stored_result_round_trips_exactly(kind: Any, value: Any) -> None:
    restored = codec.load(kind, codec.dump(value))

    assert type(restored) is type(value)
    assert codec.dump(restored) == codec.dump(value)
    if not isinstance(value, BatchOutcomes):  # errors inside compare by identity
        assert restored == value


def test_a_refused_batch_item_comes_back_as_its_error() -> None:
    stored = BatchOutcomes([ItemOutcome(0, None, NoCapacity("none free"))], atomic=True)

    (item,) = codec.load(BatchOutcomes[Grant], codec.dump(stored)).items

    assert isinstance(item.error, NoCapacity) and item.error.detail == "none free"


def test_refusals_round_trip_with_their_extra_fields() -> None:
    for error in (
        Unsatisfiable("no device has ≥ 64 cores; the largest has 8 cores", "cpu"),
        ReservationConflict("taken", (("d1", "2026-12-07T13:00:00+00:00", "x"),)),
    ):
        restored = codec.load(type(error), codec.dump(error))
        assert type(restored) is type(error)
        assert restored.__reduce__()[1] == error.__reduce__()[1]


def test_a_token_result_is_stored_without_its_secret() -> None:
    issued = TokenIssued(uuid.uuid4(), uuid.uuid4(), "eve", Role.USER, NOW, "pf_secret")

    assert "pf_secret" not in str(codec.dump(issued.without_secrets()))


def test_a_command_fingerprint_depends_on_its_values_not_their_spelling() -> None:
    a = AllocateDevice("alice", 30, DeviceRequirements(labels={"a": "1", "b": "2"}))
    b = AllocateDevice("alice", 30, DeviceRequirements(labels={"b": "2", "a": "1"}))
    c = AllocateDevice("alice", 31, DeviceRequirements(labels={"a": "1", "b": "2"}))

    assert fingerprint(a) == fingerprint(b) != fingerprint(c)


def test_an_event_serializes_to_its_type_aggregate_and_camel_case_payload() -> None:
    event = events.AllocationGranted(
        occurred_at=NOW,
        allocation_id=ALLOCATION.id,
        device_id=DEVICE.id,
        node_id=DEVICE.node_id,
        tenant_id=ALLOCATION.tenant_id,
        user_id="alice",
        expires_at=ALLOCATION.expires_at,
    )

    record = events.record_of(event)

    assert (record.type, record.aggregate_id, record.id) == (
        "allocation.granted",
        str(ALLOCATION.id),
        event.id,
    )
    assert record.payload == {
        "allocationId": str(ALLOCATION.id),
        "deviceId": str(DEVICE.id),
        "nodeId": str(DEVICE.node_id),
        "tenantId": str(ALLOCATION.tenant_id),
        "userId": "alice",
        "expiresAt": ALLOCATION.expires_at.isoformat(),
    }


def test_every_event_type_is_named_once() -> None:
    types = [kind.TYPE for kind in events.event_types()]

    assert len(types) == len(set(types)) >= 30


def test_docs_events_md_lists_every_event_as_the_code_defines_it() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "events.md"

    assert page.read_text() == events.catalogue(), "regenerate: python -m scheduler.domain.events"
