"""Trace replay: a workload log run through the real queue order (``queueing.ordered``, with
its tiers, aging and fair share) on a fleet of alike devices, in simulated time, to see what
a queue policy does before it is changed in production. Pure: jobs and a policy in, figures
out.

Each job asks for one device at its submit time and gives it back after its run time; a
device is reset for ``reset_seconds`` between leases. Whenever a device is free and jobs
wait, the queue's first takes it, the order being the service's own. Figures: utilization
(device-seconds leased over device-seconds offered, arrival of the first job to the end of
the last), waits per tier, and fairness: Jain's index over the users' mean bounded slowdown
((wait + run) / max(run, 10 s); 1 is perfectly even).
"""

from __future__ import annotations

import heapq
import statistics
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from scheduler.domain.queueing import (
    QueueEntry,
    QueuePolicy,
    QueueStatus,
    decayed,
    ordered,
    overuse_by_tenant,
)
from scheduler.domain.resources import DeviceRequirements

#: Policies a replay can compare, by name.
POLICIES: dict[str, QueuePolicy] = {
    "fifo": QueuePolicy(
        tier_weights={}, default_tier_weight=0.0, aging_per_minute=1.0, fairness_weight=0.0
    ),
    "priority": QueuePolicy(),
    "no-fair-share": QueuePolicy(fairness_weight=0.0),
    "strong-fair-share": QueuePolicy(fairness_weight=200.0),
    "slow-aging": QueuePolicy(aging_per_minute=5.0),
}
TIERS = ("enterprise", "standard", "free")
#: Runs shorter than this count as this long in a slowdown (a 1 s job that waited 1 min is
#: not 60 times worse off than one that ran 1 h and waited 1 h).
SLOWDOWN_FLOOR_SECONDS = 10.0
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One job of a workload log: when it arrived, how long it ran (seconds), whose it is."""

    submit: float
    runtime: float
    user: str
    tier: str


@dataclass(frozen=True, slots=True)
class TierWaits:
    tier: str
    jobs: int
    waited: int
    p50_seconds: float
    p90_seconds: float
    max_seconds: float


@dataclass(frozen=True, slots=True)
class ReplayReport:
    policy: str
    jobs: int
    devices: int
    utilization: float
    makespan_seconds: float
    waits: tuple[TierWaits, ...]
    fairness: float
    mean_slowdown: float


def compress(jobs: Sequence[TraceJob], devices: int, load: float) -> list[TraceJob]:
    """Arrival gaps scaled so the offered work is ``load`` times what ``devices`` can do over
    the trace's span (a months-long log on a few devices would be all queue, or all idle)."""
    ordered_jobs = sorted(jobs, key=lambda j: j.submit)
    if len(ordered_jobs) < 2:
        return ordered_jobs
    start = ordered_jobs[0].submit
    span = ordered_jobs[-1].submit - start
    work = sum(j.runtime for j in ordered_jobs)
    factor = work / (load * devices * span) if span > 0 else 1.0
    return [TraceJob((j.submit - start) * factor, j.runtime, j.user, j.tier) for j in ordered_jobs]


def replay(
    jobs: Sequence[TraceJob], *, devices: int, policy: str, reset_seconds: float = 30.0
) -> ReplayReport:
    """Run ``jobs`` (by submit time) through the queue under ``policy`` (a name of
    :data:`POLICIES`).

    Raises:
        KeyError: an unknown policy.
    """
    queue_policy = POLICIES[policy]
    run = _Run(devices, reset_seconds, queue_policy)
    for job in sorted(jobs, key=lambda j: j.submit):
        run.until(job.submit)
        run.join(job)
        run.dispatch(job.submit)
    run.until(float("inf"))
    return run.report(policy)


class _Run:
    """The simulation's state: device free times, leases ending, who waits, and what each
    tenant used lately (for fair share, decayed as the service decays it)."""

    def __init__(self, devices: int, reset_seconds: float, policy: QueuePolicy) -> None:
        self.devices = devices
        self.reset = reset_seconds
        self.policy = policy
        self.free_at = [0.0] * devices
        self.ends: list[float] = []
        self.waiting: list[QueueEntry] = []
        self.jobs: dict[uuid.UUID, TraceJob] = {}
        self.waits: list[tuple[TraceJob, float]] = []
        self.usage: dict[uuid.UUID, tuple[float, float]] = {}  # tenant → (usage, as of)
        self.busy_seconds = 0.0
        self.first = float("inf")
        self.last = 0.0

    def until(self, moment: float) -> None:
        """Hand out every device that frees up before ``moment``."""
        while self.ends and self.ends[0] <= moment:
            self.dispatch(heapq.heappop(self.ends))

    def join(self, job: TraceJob) -> None:
        entry = QueueEntry(
            id=uuid.uuid4(),
            tenant_id=uuid.uuid5(uuid.NAMESPACE_OID, job.user),
            user_id=job.user,
            tier=job.tier,
            duration_minutes=max(1, round(job.runtime / 60)),
            requirements=DeviceRequirements(),
            status=QueueStatus.WAITING,
            submitted_at=_at(job.submit),
            deadline_at=_at(job.submit + 365 * 86400),
        )
        self.jobs[entry.id] = job
        self.waiting.append(entry)
        self.first = min(self.first, job.submit)

    def dispatch(self, now: float) -> None:
        idle = [d for d in range(self.devices) if self.free_at[d] <= now]
        if not idle or not self.waiting:
            return
        tenants = {e.tenant_id for e in self.waiting}
        recent = {t: self._usage(t, now) for t in tenants}
        order = ordered(
            self.waiting,
            now=_at(now),
            policy=self.policy,
            overuse=overuse_by_tenant(recent, tenants),
        )
        served = order[: len(idle)]
        for entry, device in zip(served, idle, strict=False):
            job = self.jobs.pop(entry.id)
            self.waits.append((job, now - job.submit))
            self.free_at[device] = now + job.runtime + self.reset
            heapq.heappush(self.ends, self.free_at[device])
            self.busy_seconds += job.runtime
            self.last = max(self.last, now + job.runtime)
            self._use(entry.tenant_id, now, job.runtime)
        taken = {e.id for e in served}
        self.waiting = [e for e in self.waiting if e.id not in taken]

    def _usage(self, tenant: uuid.UUID, now: float) -> float:
        amount, since = self.usage.get(tenant, (0.0, now))
        return decayed(amount, timedelta(seconds=now - since), self.policy.usage_half_life)

    def _use(self, tenant: uuid.UUID, now: float, seconds: float) -> None:
        self.usage[tenant] = (self._usage(tenant, now) + seconds, now)

    def report(self, policy: str) -> ReplayReport:
        span = max(self.last - self.first, 1e-9) if self.waits else 0.0
        by_user: dict[str, list[float]] = {}
        for job, wait in self.waits:
            slowdown = (wait + job.runtime) / max(job.runtime, SLOWDOWN_FLOOR_SECONDS)
            by_user.setdefault(job.user, []).append(slowdown)
        means = [statistics.fmean(v) for v in by_user.values()]
        return ReplayReport(
            policy=policy,
            jobs=len(self.waits),
            devices=self.devices,
            utilization=round(self.busy_seconds / (self.devices * span), 4) if span else 0.0,
            makespan_seconds=round(span, 1),
            waits=tuple(_tier_waits(tier, self.waits) for tier in _tiers(self.waits)),
            fairness=round(_jain(means), 4),
            mean_slowdown=round(statistics.fmean(means), 3) if means else 0.0,
        )


def _at(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def _tiers(waits: list[tuple[TraceJob, float]]) -> list[str]:
    seen = {job.tier for job, _ in waits}
    return [t for t in TIERS if t in seen] + sorted(seen - set(TIERS))


def _tier_waits(tier: str, waits: list[tuple[TraceJob, float]]) -> TierWaits:
    values = sorted(w for job, w in waits if job.tier == tier)
    return TierWaits(
        tier=tier,
        jobs=len(values),
        waited=sum(1 for w in values if w > 0),
        p50_seconds=round(_quantile(values, 0.5), 1),
        p90_seconds=round(_quantile(values, 0.9), 1),
        max_seconds=round(values[-1], 1) if values else 0.0,
    )


def _quantile(ordered_values: list[float], q: float) -> float:
    if not ordered_values:
        return 0.0
    return ordered_values[min(len(ordered_values) - 1, int(q * len(ordered_values)))]


def _jain(values: list[float]) -> float:
    """Jain's fairness index: 1 when all equal, 1/n when one has everything."""
    if not values:
        return 1.0
    total = sum(values)
    squares = sum(v * v for v in values)
    return total * total / (len(values) * squares) if squares else 1.0
