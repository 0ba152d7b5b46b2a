"""Outbox events: one frozen dataclass per event type, each a past-tense fact written in the
transaction of the change it records, and one serializer (``record_of``) that turns them into
the ``EventRecord`` the outbox stores and the relay publishes (payload keys in camelCase).

``docs/events.md`` lists every type with its payload; ``catalogue()`` writes that page.
"""

from __future__ import annotations

import dataclasses
import typing
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from scheduler.domain import codec


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event as the outbox stores it and the stream carries it: a stable id, its type,
    the id of the aggregate it is about, and its JSON payload."""

    type: str
    aggregate_id: str
    payload: dict[str, Any]
    occurred_at: datetime
    id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    """A fact. ``TYPE`` is its name on the stream; ``AGGREGATE`` names the field whose value
    is the aggregate id (``None``: the scheduler itself)."""

    TYPE: ClassVar[str]
    AGGREGATE: ClassVar[str | None]
    occurred_at: datetime
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def aggregate_id(self) -> str:
        return "scheduler" if self.AGGREGATE is None else str(getattr(self, self.AGGREGATE))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


ENVELOPE_FIELDS = frozenset({"occurred_at", "id"})


def payload_fields(kind: type[DomainEvent]) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(kind) if f.name not in ENVELOPE_FIELDS]


def record_of(event: DomainEvent) -> EventRecord:
    """The serializer: the event as the outbox stores it."""
    payload = {
        _camel(f.name): codec.dump(getattr(event, f.name)) for f in payload_fields(type(event))
    }
    return EventRecord(event.TYPE, event.aggregate_id, payload, event.occurred_at, event.id)


# ---- leases ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationGranted(DomainEvent):
    TYPE = "allocation.granted"
    AGGREGATE = "allocation_id"
    allocation_id: uuid.UUID
    device_id: uuid.UUID
    node_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationEnded(DomainEvent):
    """A lease ended; the usage record billed it to the second."""

    AGGREGATE = "allocation_id"
    allocation_id: uuid.UUID
    device_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str
    ended_at: datetime
    reason: str
    duration_seconds: int
    usage_record_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationReleased(AllocationEnded):
    TYPE = "allocation.released"


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationExpired(AllocationEnded):
    TYPE = "allocation.expired"


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationRevoked(AllocationEnded):
    TYPE = "allocation.revoked"


#: The event of a lease that ended in each status.
ENDED_EVENT: dict[str, type[AllocationEnded]] = {
    "released": AllocationReleased,
    "expired": AllocationExpired,
    "revoked": AllocationRevoked,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationMoved(DomainEvent):
    """A lease moved to another device (its own failed, or its node went offline); it keeps
    its id, expiry and bill. The ADB endpoints are ``host:port``."""

    TYPE = "allocation.moved"
    AGGREGATE = "allocation_id"
    allocation_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str
    from_device_id: uuid.UUID
    to_device_id: uuid.UUID
    to_node_id: uuid.UUID
    from_adb: str
    to_adb: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RebalanceStarted(DomainEvent):
    """A rebalance began moving leases (each move is an ``allocation.moved``, reason
    ``rebalance``); the objective is the strategy's score before and planned after."""

    TYPE = "rebalance.started"
    AGGREGATE = "job_id"
    job_id: uuid.UUID
    strategy: str
    moves: int
    objective_before: int
    objective_after: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RebalanceCompleted(DomainEvent):
    """A rebalance ran every planned move: ``moved`` of them, ``skipped`` (their lease ended
    or their target was taken meanwhile)."""

    TYPE = "rebalance.completed"
    AGGREGATE = "job_id"
    job_id: uuid.UUID
    moved: int
    skipped: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RebalanceFailed(DomainEvent):
    """A rebalance stopped on an error (``message``); the moves it made stay made."""

    TYPE = "rebalance.failed"
    AGGREGATE = "job_id"
    job_id: uuid.UUID
    moved: int
    skipped: int
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationExtended(DomainEvent):
    TYPE = "allocation.extended"
    AGGREGATE = "allocation_id"
    allocation_id: uuid.UUID
    user_id: str
    tenant_id: uuid.UUID
    additional_minutes: int
    expires_at: datetime
    reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationExpiring(DomainEvent):
    TYPE = "allocation.expiring"
    AGGREGATE = "allocation_id"
    allocation_id: uuid.UUID
    user_id: str
    tenant_id: uuid.UUID
    expires_at: datetime
    seconds_left: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PreemptionNoticed(DomainEvent):
    TYPE = "allocation.preemption_notice"
    AGGREGATE = "allocation_id"
    allocation_id: uuid.UUID
    device_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str
    revoke_at: datetime
    queue_entry_id: uuid.UUID
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PreemptionCancelled(DomainEvent):
    TYPE = "allocation.preemption_cancelled"
    AGGREGATE = "allocation_id"
    allocation_id: uuid.UUID
    user_id: str
    tenant_id: uuid.UUID
    queue_entry_id: uuid.UUID


# ---- devices and nodes -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceEvent(DomainEvent):
    AGGREGATE = "device_id"
    device_id: uuid.UUID
    node_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceCreated(DeviceEvent):
    """A device was created on its node (it starts ``provisioning``)."""

    TYPE = "device.created"
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceProvisioned(DeviceEvent):
    TYPE = "device.provisioned"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceResetStarted(DeviceEvent):
    TYPE = "device.reset_started"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceReady(DeviceEvent):
    TYPE = "device.ready"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceFailed(DeviceEvent):
    """A device was reported failed (by an admin, a service, or its node agent after two
    failed resets); it is quarantined until it recovers and passes a reset."""

    TYPE = "device.failed"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceRecovered(DeviceEvent):
    """A failed device was reported recovered: it is reset, and available once that passes."""

    TYPE = "device.recovered"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeOffline(DomainEvent):
    """A node's agent sent no heartbeat for a while: no new leases, and its leases moved."""

    TYPE = "node.offline"
    AGGREGATE = "node_id"
    node_id: uuid.UUID
    last_heartbeat_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeOnline(DomainEvent):
    """An offline node's heartbeats came back: it has the status it had before."""

    TYPE = "node.online"
    AGGREGATE = "node_id"
    node_id: uuid.UUID
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceRetired(DeviceEvent):
    """A device was removed from service (with its node, or alone)."""

    TYPE = "device.retired"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceUpdated(DeviceEvent):
    TYPE = "device.updated"
    labels: dict[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeMaintenance(DomainEvent):
    """Maintenance began (no new leases; running ones go on to their end) or ended."""

    TYPE = "node.maintenance"
    AGGREGATE = "node_id"
    node_id: uuid.UUID
    enabled: bool
    reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeDraining(DomainEvent):
    """A drain began: ``migrate`` moves every lease now, ``wait`` lets them end and moves
    what is left at the deadline."""

    TYPE = "node.draining"
    AGGREGATE = "node_id"
    node_id: uuid.UUID
    mode: str
    deadline: datetime | None
    remove_when_drained: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeDrained(DomainEvent):
    TYPE = "node.drained"
    AGGREGATE = "node_id"
    node_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRemoved(DomainEvent):
    """A node left the fleet; its devices were retired."""

    TYPE = "node.removed"
    AGGREGATE = "node_id"
    node_id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeUpdated(DomainEvent):
    TYPE = "node.updated"
    AGGREGATE = "node_id"
    node_id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRegistered(DomainEvent):
    TYPE = "node.registered"
    AGGREGATE = "node_id"
    node_id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UserSuspended(DomainEvent):
    """The platform suspended (``cause`` ``suspended``) or deleted a user, or billing did
    (``billing``; ``userId`` ``tenant:<id>`` for a whole tenant): its leases ended, its waits
    and bookings cancelled, a user's tokens revoked (not for billing), its requests
    refused."""

    TYPE = "user.suspended"
    AGGREGATE = "user_id"
    user_id: str
    cause: str
    reason: str
    leases_ended: int
    entries_cancelled: int
    bookings_cancelled: int
    tokens_revoked: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UserReinstated(DomainEvent):
    """The platform activated a suspended user again, or a payment lifted a billing
    suspension (``userId`` ``tenant:<id>``: a tenant); revoked tokens stay revoked."""

    TYPE = "user.reinstated"
    AGGREGATE = "user_id"
    user_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UserLimitSet(DomainEvent):
    """The platform set the device limit of a user (or of a tenant: ``userId``
    ``tenant:<id>``): the notice that the ``activeLeases`` above it end at ``excessEndsAt``
    (none when it holds no more), oldest first."""

    TYPE = "user.limit_set"
    AGGREGATE = "user_id"
    user_id: str
    max_devices: int
    active_leases: int
    excess_ends_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserLimitEnforced(DomainEvent):
    """The grace ran out: the user's oldest leases above its limit ended."""

    TYPE = "user.limit_enforced"
    AGGREGATE = "user_id"
    user_id: str
    max_devices: int
    leases_ended: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UserSuspensionWarning(DomainEvent):
    """The user is suspended at ``suspendAt`` unless a payment comes in first."""

    TYPE = "user.suspension_warning"
    AGGREGATE = "user_id"
    user_id: str
    reason: str
    suspend_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class UserBillingSettled(DomainEvent):
    """A payment came in: no suspension is due any more (``reinstated``: the user, suspended
    for billing, is back)."""

    TYPE = "user.billing_settled"
    AGGREGATE = "user_id"
    user_id: str
    reinstated: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeCordoned(DomainEvent):
    TYPE = "node.cordoned"
    AGGREGATE = "node_id"
    node_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeUncordoned(DomainEvent):
    TYPE = "node.uncordoned"
    AGGREGATE = "node_id"
    node_id: uuid.UUID


# ---- tenants, tokens, settings -----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantCreated(DomainEvent):
    TYPE = "tenant.created"
    AGGREGATE = "tenant_id"
    tenant_id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantUpdated(DomainEvent):
    TYPE = "tenant.updated"
    AGGREGATE = "tenant_id"
    tenant_id: uuid.UUID
    tier: str
    max_devices: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenIssued(DomainEvent):
    """A bearer token was issued (its secret is never in any event)."""

    TYPE = "token.issued"
    AGGREGATE = "token_id"
    token_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str
    role: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRevoked(DomainEvent):
    """A bearer token was revoked: every replica refuses it within a second."""

    TYPE = "token.revoked"
    AGGREGATE = "token_id"
    token_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyChanged(DomainEvent):
    """The placement strategy's type changed (an activation, or ``POST /scheduler/strategy``)."""

    TYPE = "scheduler.strategy_changed"
    AGGREGATE = None
    strategy: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategySaved(DomainEvent):
    """A strategy of the catalogue was created or changed; its weights are the (fit,
    balance, node) points of the optimizer's score terms."""

    TYPE = "strategy.saved"
    AGGREGATE = "strategy_id"
    strategy_id: uuid.UUID
    name: str
    type: str
    weights: list[int]


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyActivated(DomainEvent):
    """A strategy of the catalogue became the active one."""

    TYPE = "strategy.activated"
    AGGREGATE = "strategy_id"
    strategy_id: uuid.UUID
    name: str
    type: str
    activated_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyDeleted(DomainEvent):
    TYPE = "strategy.deleted"
    AGGREGATE = "strategy_id"
    strategy_id: uuid.UUID
    name: str


# ---- reservations ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationEvent(DomainEvent):
    AGGREGATE = "reservation_id"
    reservation_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str
    device_id: uuid.UUID
    start_time: datetime
    end_time: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationCreated(ReservationEvent):
    TYPE = "reservation.created"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationUpdated(ReservationEvent):
    TYPE = "reservation.updated"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationCancelled(ReservationEvent):
    TYPE = "reservation.cancelled"
    reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationReminded(ReservationEvent):
    TYPE = "reservation.reminder"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationPrewarmStarted(ReservationEvent):
    TYPE = "reservation.prewarm_started"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationActivated(ReservationEvent):
    TYPE = "reservation.activated"
    allocation_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationMoved(ReservationEvent):
    """A booking moved to another device: at its start (its device was not available), or
    at once when its device failed (no lease yet: ``allocation_id`` is null)."""

    TYPE = "reservation.moved"
    allocation_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationFailed(ReservationEvent):
    TYPE = "reservation.failed"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationCheckedIn(ReservationEvent):
    """The booking's user checked in: the device is theirs until the booking's end."""

    TYPE = "reservation.checked_in"
    allocation_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationNoShow(ReservationEvent):
    """The booking's user did not check in within its window: its lease was revoked
    (reason ``no_show``, billed to that moment) and the device freed."""

    TYPE = "reservation.no_show"
    allocation_id: uuid.UUID | None = None


# ---- the queue ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEvent(DomainEvent):
    AGGREGATE = "queue_entry_id"
    queue_entry_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueJoined(QueueEvent):
    TYPE = "queue.joined"
    tier: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueFulfilled(QueueEvent):
    TYPE = "queue.fulfilled"
    allocation_id: uuid.UUID
    device_id: uuid.UUID
    waited_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCancelled(QueueEvent):
    TYPE = "queue.cancelled"
    reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueTimedOut(QueueEvent):
    TYPE = "queue.timed_out"
    deadline_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueFailed(QueueEvent):
    TYPE = "queue.failed"
    reason: str


def event_types() -> list[type[DomainEvent]]:
    """Every concrete event class (one per type), in the order of this module."""
    return [
        value
        for value in globals().values()
        if isinstance(value, type) and issubclass(value, DomainEvent) and "TYPE" in vars(value)
    ]


def _json_type(hint: Any) -> str:
    text = {
        uuid.UUID: "uuid",
        datetime: "instant (ISO 8601)",
        str: "string",
        int: "integer",
        float: "number",
    }
    options = typing.get_args(hint) or (hint,)
    names = [text.get(o, "null" if o is type(None) else str(o)) for o in options]
    return " or ".join(names)


def catalogue() -> str:
    """``docs/events.md``: every event type with its payload."""
    lines = [
        "# Events",
        "",
        "Every state change writes its events to the outbox in the same transaction; the",
        "housekeeper relays them, at least once and in order, to the Redis stream",
        "`phonefleet:events`. Each stream entry carries `event_id` (stable: drop duplicates",
        "by it), `seq`, `type`, `aggregate_id`, `occurred_at` and `payload` (JSON, below).",
        "",
        "Generated from `scheduler/domain/events.py` (`catalogue()`); a test keeps it current.",
        "",
    ]
    for kind in event_types():
        hints = typing.get_type_hints(kind)
        doc = (kind.__doc__ or "").strip().splitlines()[0] if kind.__doc__ else ""
        about = "the scheduler" if kind.AGGREGATE is None else f"`{_camel(kind.AGGREGATE)}`"
        lines += [f"## `{kind.TYPE}`", ""]
        if doc and not doc.startswith(kind.__name__ + "("):
            lines += [doc, ""]
        lines += [f"Aggregate: {about}.", "", "| field | type |", "|---|---|"]
        lines += [
            f"| `{_camel(f.name)}` | {_json_type(hints[f.name])} |" for f in payload_fields(kind)
        ]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m scheduler.domain.events > docs/events.md
    print(catalogue(), end="")
