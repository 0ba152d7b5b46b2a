"""The wait queue's rules: who goes first, why an entry waits, and when it should start.

Priority is a pure function of the entry, the tenant's recent usage and ``now``:

    priority = tier_weight[tier] + aging_per_minute × minutes_waited − fairness × overuse

where ``overuse`` is the tenant's share of recent (decayed) device usage minus its fair share
(1 / number of tenants with waiting entries), clipped to [−1, 1]. Aging grows without bound,
so no entry starves: no entry that arrives more than ``starvation_bound_minutes`` after it
is ever served before it (see ``QueuePolicy``), so it waits for finitely many grants, however
many requests keep coming.
"""

from __future__ import annotations

import heapq
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from scheduler.domain.errors import InvalidRequest
from scheduler.domain.resources import DeviceRequirements

MIN_QUEUE_DURATION_MINUTES = 15
MAX_QUEUE_DURATION_MINUTES = 1440
MIN_WAIT_MINUTES = 1
MAX_WAIT_MINUTES = 120
DEFAULT_WAIT_MINUTES = 30


class QueueStatus(StrEnum):
    WAITING = "waiting"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    FAILED = "failed"


class WaitReason(StrEnum):
    NO_MATCHING_DEVICE = "no_matching_device"
    QUOTA_EXCEEDED = "quota_exceeded"
    HIGHER_PRIORITY_AHEAD = "higher_priority_ahead"
    ALL_MATCHING_DEVICES_BUSY = "all_matching_devices_busy"
    CAPACITY_RESERVED = "capacity_reserved"


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """The knobs of ``priority``; the defaults make the starvation bound 15 minutes."""

    tier_weights: dict[str, float] = field(
        default_factory=lambda: {"enterprise": 300.0, "standard": 200.0, "free": 100.0}
    )
    default_tier_weight: float = 200.0
    aging_per_minute: float = 20.0
    fairness_weight: float = 50.0
    usage_half_life: timedelta = timedelta(hours=1)
    #: Preemption is opt-in: entries of these tiers may revoke leases of the preemptible
    #: tiers (after a notice and a grace period) when nothing else fits them.
    preempting_tiers: frozenset[str] = frozenset()
    preemptible_tiers: frozenset[str] = frozenset({"free"})
    preemption_grace: timedelta = timedelta(minutes=2)

    def may_preempt(self, tier: str) -> bool:
        return tier in self.preempting_tiers and tier not in self.preemptible_tiers

    def weight_of(self, tier: str) -> float:
        return self.tier_weights.get(tier, self.default_tier_weight)

    @property
    def starvation_bound_minutes(self) -> float:
        """No entry arriving more than this many minutes after another is served first.

        Two entries age at the same rate, so the gap between them is fixed: one that arrived
        ``d`` minutes earlier leads by at least ``a·d − (w_max − w_min) − 2F``, which is
        positive once ``d > (w_max − w_min + 2F) / a``.
        """
        weights = [*self.tier_weights.values(), self.default_tier_weight]
        spread = max(weights) - min(weights) + 2 * self.fairness_weight
        return spread / self.aging_per_minute


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """Backpressure: waiting entries per tenant and in all."""

    per_tenant: int = 100
    total: int = 10_000


@dataclass(frozen=True, slots=True)
class WaitView:
    """Where a waiting entry stands, as the drain of ``as_of`` saw it: its priority, its
    place among the entries that want any of the devices it could take, why it waits, and
    when it should start (``None`` when no device of the fleet matches it now)."""

    priority: float
    position: int
    ahead_count: int
    estimated_start_at: datetime | None
    reason: WaitReason
    as_of: datetime


@dataclass(frozen=True, slots=True)
class QueueEntry:
    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str
    tier: str
    duration_minutes: int
    requirements: DeviceRequirements
    status: QueueStatus
    submitted_at: datetime
    deadline_at: datetime
    ended_at: datetime | None = None
    allocation_id: uuid.UUID | None = None
    reason: str | None = None
    view: WaitView | None = None


def queue_window(now: datetime, duration_minutes: int, max_wait_minutes: int) -> datetime:
    """The deadline of a new entry.

    Raises:
        InvalidRequest: the duration or the wait is out of range.
    """
    if not MIN_QUEUE_DURATION_MINUTES <= duration_minutes <= MAX_QUEUE_DURATION_MINUTES:
        raise InvalidRequest(
            f"durationMinutes must be between {MIN_QUEUE_DURATION_MINUTES} and "
            f"{MAX_QUEUE_DURATION_MINUTES} to queue"
        )
    if not MIN_WAIT_MINUTES <= max_wait_minutes <= MAX_WAIT_MINUTES:
        raise InvalidRequest(
            f"maxWaitMinutes must be between {MIN_WAIT_MINUTES} and {MAX_WAIT_MINUTES}"
        )
    return now + timedelta(minutes=max_wait_minutes)


def priority(
    entry: QueueEntry, *, now: datetime, policy: QueuePolicy, overuse: float = 0.0
) -> float:
    """Higher goes first. ``overuse`` is the tenant's usage share minus its fair share."""
    waited = max(0.0, (now - entry.submitted_at).total_seconds() / 60)
    clipped = max(-1.0, min(1.0, overuse))
    return (
        policy.weight_of(entry.tier)
        + policy.aging_per_minute * waited
        - policy.fairness_weight * clipped
    )


def overuse_by_tenant(
    recent_usage: dict[uuid.UUID, float], waiting_tenants: set[uuid.UUID]
) -> dict[uuid.UUID, float]:
    """Each waiting tenant's share of recent usage minus its fair share of it."""
    if not waiting_tenants:
        return {}
    total = sum(recent_usage.get(t, 0.0) for t in waiting_tenants)
    fair = 1.0 / len(waiting_tenants)
    if total <= 0:
        return {t: 0.0 for t in waiting_tenants}
    return {t: recent_usage.get(t, 0.0) / total - fair for t in waiting_tenants}


def decayed(device_seconds: float, age: timedelta, half_life: timedelta) -> float:
    """Usage weighed down by its age: half as much every ``half_life``."""
    return float(device_seconds * 0.5 ** (age / half_life))


def ordered(
    entries: list[QueueEntry],
    *,
    now: datetime,
    policy: QueuePolicy,
    overuse: dict[uuid.UUID, float],
) -> list[QueueEntry]:
    """Waiting entries, first to serve first (ties: earlier submission, then id)."""
    return sorted(
        entries,
        key=lambda e: (
            -priority(e, now=now, policy=policy, overuse=overuse.get(e.tenant_id, 0.0)),
            e.submitted_at,
            e.id,
        ),
    )


def estimated_start(
    *,
    now: datetime,
    device_free_at: list[datetime],
    ahead_durations: list[timedelta],
    reset: timedelta,
) -> datetime | None:
    """When the entry should get a device, if the entries ahead of it (their lease lengths
    in order) take the devices that match it as they free up.

    ``device_free_at`` lists, per matching device, when it is free: now for an available
    one, the end of its reset for one resetting, its lease's expiry plus a reset for one
    leased. Every grant ahead holds its device for its duration and a reset. ``None`` when no
    device matches at all.
    """
    if not device_free_at:
        return None
    free = [max(now, t) for t in device_free_at]
    heapq.heapify(free)
    for duration in ahead_durations:
        start = heapq.heappop(free)
        heapq.heappush(free, start + duration + reset)
    return free[0]


def class_key(requirements: DeviceRequirements) -> str:
    """Entries asking for exactly the same thing share one class (and one device read)."""
    return json.dumps(asdict(requirements), sort_keys=True, default=str)


def wait_views(
    order: Sequence[QueueEntry],
    priorities: Mapping[uuid.UUID, float],
    devices: Mapping[str, Sequence[tuple[uuid.UUID, datetime]]],
    quota_left: Mapping[uuid.UUID, bool],
    *,
    now: datetime,
    reset: timedelta,
) -> dict[uuid.UUID, WaitView]:
    """Every waiting entry's view, from the queue's order and, per entry class
    (``class_key``), the devices that match it with the moment each is free.

    An entry's place counts the entries before it whose classes share a device with its
    class (those it competes with, not the whole queue). Its start is simulated: classes that
    share devices form one pool, and each entry in order takes the pool's device that frees
    first, holding it for its lease and a reset.
    """
    keys = {e.id: class_key(e.requirements) for e in order}
    parent = {k: k for k in devices}

    def root(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    holders: dict[uuid.UUID, set[str]] = {}
    for k, matching in devices.items():
        for device_id, _ in matching:
            holders.setdefault(device_id, set()).add(k)
    overlaps: dict[str, set[str]] = {k: {k} for k in devices}
    for sharing in holders.values():
        first, *rest = sharing
        for k in rest:
            parent[root(k)] = root(first)
        for k in sharing:
            overlaps[k] |= sharing
    heaps = {r: _free_heap(devices, r, root, now) for r in {root(k) for k in devices}}
    seen: dict[str, int] = {}
    views: dict[uuid.UUID, WaitView] = {}
    for entry in order:
        k = keys[entry.id]
        ahead = sum(seen.get(other, 0) for other in overlaps.get(k, {k}))
        seen[k] = seen.get(k, 0) + 1
        start: datetime | None = None
        if devices.get(k):
            heap = heaps[root(k)]
            start = heapq.heappop(heap)
            heapq.heappush(heap, start + timedelta(minutes=entry.duration_minutes) + reset)
        if not devices.get(k):
            reason = WaitReason.NO_MATCHING_DEVICE
        elif not quota_left.get(entry.tenant_id, True):
            reason = WaitReason.QUOTA_EXCEEDED
        elif ahead:
            reason = WaitReason.HIGHER_PRIORITY_AHEAD
        else:
            reason = WaitReason.ALL_MATCHING_DEVICES_BUSY
        views[entry.id] = WaitView(
            priorities.get(entry.id, 0.0), ahead + 1, ahead, start, reason, now
        )
    return views


def _free_heap(
    devices: Mapping[str, Sequence[tuple[uuid.UUID, datetime]]],
    pool: str,
    root: Callable[[str], str],
    now: datetime,
) -> list[datetime]:
    """The free times of a pool's devices, each device once (classes share devices)."""
    free: dict[uuid.UUID, datetime] = {}
    for k, matching in devices.items():
        if root(k) == pool:
            for device_id, at in matching:
                free[device_id] = max(now, at)
    heap = list(free.values())
    heapq.heapify(heap)
    return heap
