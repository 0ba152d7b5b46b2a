"""How good is the queue's ``estimatedStartAt``? A trace-driven simulation.

Replays the KTH SP2 workload log (shared/traces, PWA; cite: D. Feitelson, "Parallel Workloads
Archive") as device leases: each job asks for one device at its submit time, names its
requested time limit as the lease length, and gives the device back after its actual run
time (users release early, which is what makes ETAs hard). Arrival gaps are compressed so
the fleet runs near saturation. The queue is the real one: ``ordered`` for priority and
``estimated_start`` for the ETA at join time, exactly as the service computes them. Each
waiter's ETA is compared with the start it really got, and with the original platform's
"position × 30 minutes".

    python -m bench.queue_eta --jobs 3000 --devices 16 --load 1.0
"""

from __future__ import annotations

import argparse
import gzip
import heapq
import statistics
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scheduler.domain.queueing import (
    QueueEntry,
    QueuePolicy,
    QueueStatus,
    estimated_start,
    ordered,
)
from scheduler.domain.resources import DeviceRequirements

TRACE = (
    Path(__file__).resolve().parents[2]
    / "shared/traces/pwa-kth-sp2-1996/KTH-SP2-1996-2.1-cln.swf.gz"
)
TIERS = ("enterprise", "standard", "free")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Job:
    submit: float
    runtime: float
    requested: float
    user: int


def read_jobs(path: Path, limit: int) -> list[Job]:
    jobs = []
    with gzip.open(path, "rt") as lines:
        for line in lines:
            if line.startswith(";"):
                continue
            f = line.split()
            runtime, requested = float(f[3]), float(f[8])
            if runtime <= 0 or requested <= 0:
                continue
            jobs.append(Job(float(f[1]), min(runtime, requested), requested, int(f[11])))
            if len(jobs) == limit:
                break
    return jobs


def compress(jobs: list[Job], devices: int, load: float) -> list[Job]:
    """Scale arrival gaps so that offered load / capacity ≈ ``load``."""
    span = jobs[-1].submit - jobs[0].submit
    work = sum(j.runtime for j in jobs)
    factor = work / (load * devices * span)
    start = jobs[0].submit
    return [Job((j.submit - start) * factor, j.runtime, j.requested, j.user) for j in jobs]


@dataclass
class Result:
    errors: list[float]
    naive_errors: list[float]
    waits: list[float]
    queued: int


def simulate(
    jobs: list[Job], devices: int, reset: float, policy: QueuePolicy, learn: bool
) -> Result:
    """Event-driven: arrivals and lease ends; free devices go to waiters in priority order."""
    free_at = [0.0] * devices  # when each device is free again (after its reset)
    starts = [0.0] * devices
    expected_free = [0.0] * devices  # what the service believes: lease expiry + reset
    ends: list[tuple[float, int]] = []
    waiting: list[QueueEntry] = []
    info: dict[uuid.UUID, tuple[Job, float, float | None, float]] = {}
    errors, naive, waits = [], [], []
    queued = 0
    held: list[float] = []  # actual / requested of ended leases, to learn early releases

    def hold_ratio() -> float:
        return statistics.fmean(held[-500:]) if learn and held else 1.0

    def at(seconds: float) -> datetime:
        return EPOCH + timedelta(seconds=seconds)

    def dispatch(now: float) -> None:
        nonlocal waiting
        idle = [d for d in range(devices) if free_at[d] <= now and expected_free[d] >= 0]
        if not idle or not waiting:
            return
        for entry in ordered(waiting, now=at(now), policy=policy, overuse={})[: len(idle)]:
            device = idle.pop()
            job, joined, eta, naive_eta = info.pop(entry.id)
            if eta is not None:
                errors.append(now - eta)
                naive.append(now - naive_eta)
                waits.append(now - joined)
            free_at[device] = now + job.runtime + reset
            expected_free[device] = now + job.requested + reset
            starts[device] = now
            held.append(job.runtime / job.requested)
            heapq.heappush(ends, (free_at[device], device))
            waiting = [w for w in waiting if w.id != entry.id]

    for job in jobs:
        while ends and ends[0][0] <= job.submit:
            t, _ = heapq.heappop(ends)
            dispatch(t)
        now = job.submit
        entry = QueueEntry(
            id=uuid.uuid4(),
            tenant_id=uuid.UUID(int=job.user),
            user_id=str(job.user),
            tier=TIERS[zlib.crc32(str(job.user).encode()) % 3],
            duration_minutes=max(1, round(job.requested / 60)),
            requirements=DeviceRequirements(),
            status=QueueStatus.WAITING,
            submitted_at=at(now),
            deadline_at=at(now + 86400),
        )
        busy = all(f > now for f in free_at)
        eta = None
        naive_eta = now
        if busy or waiting:
            queued += 1
            order = ordered([*waiting, entry], now=at(now), policy=policy, overuse={})
            place = order.index(entry)
            est = estimated_start(
                now=at(now),
                device_free_at=[
                    at(now if f <= now else max(now, s0 + (e - reset - s0) * hold_ratio() + reset))
                    for f, e, s0 in zip(free_at, expected_free, starts, strict=True)
                ],
                ahead_durations=[
                    timedelta(minutes=e.duration_minutes * hold_ratio()) for e in order[:place]
                ],
                reset=timedelta(seconds=reset),
            )
            eta = (est - EPOCH).total_seconds() if est else None
            naive_eta = now + (place + 1) * 1800.0
        info[entry.id] = (job, now, eta, naive_eta)
        waiting.append(entry)
        dispatch(now)
    while ends:
        t, _ = heapq.heappop(ends)
        dispatch(t)
    return Result(errors, naive, waits, queued)


def pct(values: list[float], q: float) -> float:
    ordered_values = sorted(values)
    return ordered_values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--devices", type=int, default=16)
    parser.add_argument("--load", type=float, default=1.0, help="offered load / capacity")
    parser.add_argument("--reset-seconds", type=float, default=30.0)
    args = parser.parse_args()
    jobs = compress(read_jobs(TRACE, args.jobs), args.devices, args.load)
    plain = simulate(jobs, args.devices, args.reset_seconds, QueuePolicy(), learn=False)
    learned = simulate(jobs, args.devices, args.reset_seconds, QueuePolicy(), learn=True)
    print(
        f"KTH SP2, {len(jobs)} jobs on {args.devices} devices at load {args.load}: "
        f"{plain.queued} waited (median wait {statistics.median(plain.waits) / 60:.1f} min)"
    )
    print(f"{'ETA':<40}{'|error| p50':>12}{'p90':>10}{'mean signed':>14}{'late':>8}  (minutes)")
    rows = (
        ("leases end at expiry", plain.errors),
        ("leases end at learned hold ratio", learned.errors),
        ("position × 30 min (original)", plain.naive_errors),
    )
    for name, errors in rows:
        absolute = [abs(e) / 60 for e in errors]
        print(
            f"{name:<40}{pct(absolute, 0.5):>12.1f}{pct(absolute, 0.9):>10.1f}"
            f"{statistics.mean(errors) / 60:>14.1f}"
            f"{sum(e > 60 for e in errors) / len(errors):>8.0%}"
        )


if __name__ == "__main__":
    main()
