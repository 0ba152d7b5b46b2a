"""PhoneFleet's events as the platform's own messages on its ``cloudphone.events`` exchange:
the original scheduler's routing keys and body fields (../shared/notes/platform-contract.md),
for the events that have one. Each message's id is its event's id (a release makes two
messages, on two keys, with that one id), so a redelivered event is recognisable.

Fields the original sent that PhoneFleet's events do not carry (the lease's strategy and
start on a release, an extension's count) are left out rather than sent empty: the
platform's schemas reject ``null`` where a field is optional.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scheduler.domain.events import EventRecord


@dataclass(frozen=True, slots=True)
class PlatformMessage:
    routing_key: str
    body: dict[str, Any]
    message_id: str


def _released(record: EventRecord, automatic: bool) -> list[tuple[str, dict[str, Any]]]:
    p = record.payload
    lease = {
        "deviceId": p["deviceId"],
        "userId": p["userId"],
        "allocationId": p["allocationId"],
        "durationSeconds": p["durationSeconds"],
    }
    return [
        (
            "device.released",
            {"type": "device.released", **lease, "releasedAt": p["endedAt"]},
        ),
        (
            "scheduler.allocation.released",
            {
                **lease,
                "tenantId": p["tenantId"],
                "releasedAt": p["endedAt"],
                "reason": p["reason"],
                "automatic": automatic,
            },
        ),
    ]


def _granted(record: EventRecord) -> list[tuple[str, dict[str, Any]]]:
    p = record.payload
    body = {
        "type": "device.allocated",
        "deviceId": p["deviceId"],
        "userId": p["userId"],
        "tenantId": p["tenantId"],
        "allocationId": p["allocationId"],
        "allocatedAt": record.occurred_at.isoformat(),
        "expiresAt": p["expiresAt"],
    }
    return [("device.allocated", body)]


def _expired(record: EventRecord) -> list[tuple[str, dict[str, Any]]]:
    p = record.payload
    body = {
        "deviceId": p["deviceId"],
        "userId": p["userId"],
        "tenantId": p["tenantId"],
        "allocationId": p["allocationId"],
        "expiredAt": p["endedAt"],
        "durationSeconds": p["durationSeconds"],
    }
    return [("scheduler.allocation.expired", body)]


def _extended(record: EventRecord) -> list[tuple[str, dict[str, Any]]]:
    p = record.payload
    body = {
        "allocationId": p["allocationId"],
        "userId": p["userId"],
        "tenantId": p["tenantId"],
        "newExpiresAt": p["expiresAt"],
        "additionalMinutes": p["additionalMinutes"],
    }
    return [("scheduler.allocation.extended", body)]


def _as_is(key: str) -> Callable[[EventRecord], list[tuple[str, dict[str, Any]]]]:
    """An event whose platform message is its own payload under the platform's key."""
    return lambda record: [(key, dict(record.payload))]


#: PhoneFleet event type → its platform messages (key, body), for the events that have one.
MAPPINGS: dict[str, Callable[[EventRecord], list[tuple[str, dict[str, Any]]]]] = {
    "allocation.granted": _granted,
    "allocation.released": lambda record: _released(record, automatic=False),
    "allocation.revoked": lambda record: _released(record, automatic=True),
    "allocation.expired": _expired,
    "allocation.extended": _extended,
    "queue.joined": _as_is("scheduler.queue.joined"),
    "queue.cancelled": _as_is("scheduler.queue.cancelled"),
    "queue.fulfilled": _as_is("scheduler.queue.fulfilled"),
    "reservation.created": _as_is("scheduler.reservation.created"),
    "reservation.updated": _as_is("scheduler.reservation.updated"),
    "reservation.cancelled": _as_is("scheduler.reservation.cancelled"),
    "reservation.activated": _as_is("scheduler.reservation.executed"),
    "reservation.failed": _as_is("scheduler.reservation.failed"),
}


def platform_messages(record: EventRecord) -> list[PlatformMessage]:
    """The platform's messages for ``record`` (none for an event the original never sent),
    each stamped with the event's time."""
    mapping = MAPPINGS.get(record.type)
    if mapping is None:
        return []
    stamp = {"timestamp": record.occurred_at.isoformat()}
    return [
        PlatformMessage(key, {**body, **stamp}, str(record.id)) for key, body in mapping(record)
    ]
