"""Outbox events: every state change is recorded as one, in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ALLOCATION_GRANTED = "allocation.granted"
ALLOCATION_RELEASED = "allocation.released"
ALLOCATION_EXPIRED = "allocation.expired"
ALLOCATION_REVOKED = "allocation.revoked"
ALLOCATION_EXTENDED = "allocation.extended"
ALLOCATION_EXPIRING = "allocation.expiring"
PREEMPTION_NOTICE = "allocation.preemption_notice"
PREEMPTION_CANCELLED = "allocation.preemption_cancelled"
DEVICE_PROVISIONED = "device.provisioned"
DEVICE_RESET_STARTED = "device.reset_started"
DEVICE_READY = "device.ready"
NODE_REGISTERED = "node.registered"
NODE_CORDONED = "node.cordoned"
NODE_UNCORDONED = "node.uncordoned"
TENANT_CREATED = "tenant.created"
TENANT_UPDATED = "tenant.updated"
STRATEGY_CHANGED = "scheduler.strategy_changed"
RESERVATION_CREATED = "reservation.created"
RESERVATION_UPDATED = "reservation.updated"
RESERVATION_CANCELLED = "reservation.cancelled"
RESERVATION_REMINDER = "reservation.reminder"
RESERVATION_PREWARM = "reservation.prewarm_started"
RESERVATION_ACTIVATED = "reservation.activated"
RESERVATION_MOVED = "reservation.moved"
RESERVATION_FAILED = "reservation.failed"
QUEUE_JOINED = "queue.joined"
QUEUE_FULFILLED = "queue.fulfilled"
QUEUE_CANCELLED = "queue.cancelled"
QUEUE_TIMED_OUT = "queue.timed_out"
QUEUE_FAILED = "queue.failed"

ENDED_EVENT = {
    "released": ALLOCATION_RELEASED,
    "expired": ALLOCATION_EXPIRED,
    "revoked": ALLOCATION_REVOKED,
}


@dataclass(frozen=True, slots=True)
class Event:
    """A past-tense fact with a stable id, relayed at least once to the event stream."""

    type: str
    aggregate_id: str
    payload: dict[str, Any]
    occurred_at: datetime
    id: uuid.UUID = field(default_factory=uuid.uuid4)
