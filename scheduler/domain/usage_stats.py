"""Fleet statistics from real records: hourly usage trends from lease intervals, and the
cluster's capacity, usage and utilization. Pure functions of values (``now`` passed in)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.domain.errors import InvalidRequest
from scheduler.domain.resources import Resources

HOUR = timedelta(hours=1)
#: The longest trend a request may ask for (a week of hourly buckets).
MAX_TREND_HOURS = 168


@dataclass(frozen=True, slots=True)
class LeaseInterval:
    """When one lease held its device: ``end`` is ``None`` while it still does."""

    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class HourBucket:
    """One hour of a trend: leases that held a device in it, the device-seconds they held,
    that over what the devices could have held, and the most leases held at once."""

    hour: datetime
    leases: int
    device_seconds: float
    utilization: float
    peak_concurrent: int


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """What one tenant, one of its users, or one device (``level``) used in a window, to the
    second: leases that overlapped it and the seconds they held within it, also weighed by
    the device's cores, memory and storage (what billing multiplies by its prices)."""

    level: str
    tenant_id: uuid.UUID
    user_id: str | None
    device_id: uuid.UUID | None
    leases: int
    seconds: int
    core_seconds: float
    memory_mb_seconds: int
    storage_mb_seconds: int


@dataclass(frozen=True, slots=True)
class FleetGauges:
    """The fleet's state as the metrics show it, read at one moment: devices by node and
    status, active leases by tenant tier, waiting entries and their oldest wait by tier,
    outbox events not yet relayed and the age of the oldest, and nodes silent past their
    heartbeats."""

    devices: Mapping[tuple[str, str], int]
    leases_by_tier: Mapping[str, int]
    waiting_by_tier: Mapping[str, int]
    oldest_wait_by_tier: Mapping[str, float]
    outbox_backlog: int
    relay_lag_seconds: float
    nodes_silent: int


#: The levels of the usage totals, in the order a report lists them per tenant.
USAGE_LEVELS = ("tenant", "user", "device")


def trend_start(now: datetime, hours: int) -> datetime:
    """The first bucket's hour: ``hours`` buckets end with the one ``now`` is in."""
    current = now.replace(minute=0, second=0, microsecond=0)
    return current - (hours - 1) * HOUR


def trend_window(
    start: datetime | None, end: datetime | None, hours: int, *, now: datetime
) -> tuple[datetime, int]:
    """The trend's end and hour count for a window given by its dates (the platform's
    console) or by ``hours`` back from its end: the end is ``end`` or ``now`` (never later
    than ``now``), and the hours cover ``start`` to the end, rounded up.

    Raises:
        InvalidRequest: the start is not before the end, or the window is longer than
            ``MAX_TREND_HOURS``.
    """
    last = min(end, now) if end is not None else now
    if start is None:
        return last, hours
    if start >= last:
        raise InvalidRequest("startDate must be before endDate (and before now)")
    span = math.ceil((last - start) / HOUR)
    if span > MAX_TREND_HOURS:
        raise InvalidRequest(f"a trend covers at most {MAX_TREND_HOURS} hours")
    return last, span


def hourly_trend(
    intervals: Sequence[LeaseInterval], *, now: datetime, hours: int, devices: int
) -> list[HourBucket]:
    """``hours`` hourly buckets up to the one ``now`` is in. A lease still running counts up
    to ``now``; the current bucket's utilization is over the part of it that has passed.
    ``devices``: how many devices could have been leased (the scope's devices now). Each
    lease is visited once per hour it spans (a week of a big fleet stays linear)."""
    start = trend_start(now, hours)
    inside: list[list[tuple[datetime, datetime]]] = [[] for _ in range(hours)]
    for interval in intervals:
        begin, end = interval.start, min(interval.end or now, now)
        first = max(int((begin - start) / HOUR), 0)
        last = min(int((end - start) / HOUR), hours - 1)
        for n in range(first, last + 1):
            low = start + n * HOUR
            if _touches(begin, end, low, low + HOUR):
                inside[n].append((max(begin, low), min(end, low + HOUR)))
    buckets = []
    for n, held in enumerate(inside):
        low = start + n * HOUR
        seconds = sum((e - s).total_seconds() for s, e in held)
        span = (min(low + HOUR, now) - low).total_seconds()
        buckets.append(
            HourBucket(
                hour=low,
                leases=len(held),
                device_seconds=round(seconds, 3),
                utilization=round(seconds / (span * devices), 6) if span > 0 and devices else 0.0,
                peak_concurrent=peak_concurrent(held),
            )
        )
    return buckets


def _touches(start: datetime, end: datetime, low: datetime, high: datetime) -> bool:
    """Whether a lease held its device during [low, high): overlapping it, or, for a lease of
    no length, starting in it."""
    if start == end:
        return low <= start < high
    return start < high and end > low


def peak_concurrent(intervals: Sequence[tuple[datetime, datetime]]) -> int:
    """The most leases holding a device at one instant (one ending as another starts: not
    both; a lease of no length counts at its instant)."""
    # At one instant: ends of leases first, then starts, then leases of no length open and
    # close; so leases that touch never overlap, and one of no length counts at its instant.
    edges = sorted(
        [(s, 1, 1) for s, e in intervals if s < e]
        + [(e, 0, -1) for s, e in intervals if s < e]
        + [(s, 2, 1) for s, e in intervals if s == e]
        + [(s, 3, -1) for s, e in intervals if s == e]
    )
    open_, peak = 0, 0
    for _, _, step in edges:
        open_ += step
        peak = max(peak, open_)
    return peak


@dataclass(frozen=True, slots=True)
class NodeTotals:
    """What the database says of one node: status, capacity and what its leases use."""

    status: str
    capacity: Resources
    max_devices: int
    leased: Resources
    leased_devices: int


@dataclass(frozen=True, slots=True)
class ClusterStats:
    nodes: dict[str, int]
    capacity: Resources
    max_devices: int
    usage: Resources
    leased_devices: int
    utilization: dict[str, float]
    devices: dict[str, int]


#: Node statuses, and those counted as online (taking part, schedulable or not).
STATUSES = ("ready", "cordoned", "offline", "maintenance", "draining")
ONLINE = ("ready", "cordoned")


def cluster_stats(nodes: Sequence[NodeTotals], devices: Mapping[str, int]) -> ClusterStats:
    """Totals over ``nodes`` and the device counts by status; utilization is what active
    leases use over the nodes' capacity (devices: leased over every device not retired)."""
    capacity = sum((n.capacity for n in nodes), Resources(0, 0, 0))
    usage = sum((n.leased for n in nodes), Resources(0, 0, 0))
    leased = sum(n.leased_devices for n in nodes)
    by_status = {status: sum(n.status == status for n in nodes) for status in STATUSES}
    counted = {"total": len(nodes), "online": sum(by_status[s] for s in ONLINE), **by_status}
    existing = sum(n for status, n in devices.items() if status != "retired")
    return ClusterStats(
        nodes=counted,
        capacity=capacity,
        max_devices=sum(n.max_devices for n in nodes),
        usage=usage,
        leased_devices=leased,
        utilization={
            "cpu": _share(usage.cpu_cores, capacity.cpu_cores),
            "memory": _share(usage.memory_mb, capacity.memory_mb),
            "storage": _share(usage.storage_mb, capacity.storage_mb),
            "devices": _share(leased, existing),
        },
        devices=dict(devices),
    )


def _share(part: float, whole: float) -> float:
    return round(part / whole, 6) if whole else 0.0
