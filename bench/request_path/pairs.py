"""Allocate+release pairs driven by concurrent workers, and the summary of their latencies.

A *worker* is one client (an HTTP client with its own token, or one PostgreSQL connection)
that performs a pair at a time: allocate, then release what it got. :func:`drive` runs a
fixed number of pairs over all workers, each taking the next pair as soon as it is free, so
the slowest worker never leaves the others idle. :func:`measure` runs a warm-up, then the
measured pairs, and returns a :class:`SettingResult`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from bench.request_path.cpu import CpuMeter, CpuUse

#: A setting is abandoned once this share of its pairs failed (at least MIN_FAILURES).
MAX_FAILURE_SHARE = 0.05
MIN_FAILURES = 10


class PairFailed(Exception):
    """One allocate or release was refused; the pair is counted as an error."""


class PairWorker(Protocol):
    async def pair(self) -> tuple[float, float]:
        """Allocate then release; return (allocate seconds, whole pair seconds).

        Raises:
            PairFailed: the service refused the allocate or the release.
        """
        ...


@dataclass(frozen=True)
class Summary:
    """Latency figures of one kind of operation, in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        if not seconds:
            return cls(0, float("nan"), float("nan"), float("nan"), float("nan"))
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        return cls(
            count=len(ms),
            p50_ms=float(np.percentile(ms, 50)),
            p99_ms=float(np.percentile(ms, 99)),
            mean_ms=float(ms.mean()),
            max_ms=float(ms.max()),
        )


@dataclass
class Tally:
    """What the pairs of one run gave: latencies, failures and the first failure messages."""

    allocate_s: list[float] = field(default_factory=list)
    pair_s: list[float] = field(default_factory=list)
    failures: int = 0
    messages: list[str] = field(default_factory=list)

    def add(self, allocate_s: float, pair_s: float) -> None:
        self.allocate_s.append(allocate_s)
        self.pair_s.append(pair_s)

    def fail(self, error: PairFailed, total: int) -> None:
        self.failures += 1
        if len(self.messages) < 3:
            self.messages.append(str(error))
        if self.failures >= max(MIN_FAILURES, MAX_FAILURE_SHARE * total):
            raise RuntimeError(
                f"{self.failures} of {total} pairs failed, e.g.: " + " | ".join(self.messages)
            )


@dataclass(frozen=True)
class SettingResult:
    """One mode at one concurrency: the measured pairs, their latencies and the CPU used."""

    mode: str
    concurrency: int
    pairs: int
    errors: int
    wall_s: float
    allocate: Summary
    pair: Summary
    cpu: CpuUse
    error_samples: tuple[str, ...] = ()

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_ms_per_pair(self) -> float:
        """CPU the whole machine spent per pair: every process, the load generator too."""
        return 1000.0 * self.cpu.machine_busy_s / self.pairs if self.pairs else float("nan")

    @property
    def bench_cpu_ms_per_call(self) -> float:
        """CPU the load generator spent per call (two calls a pair)."""
        return 1000.0 * self.cpu.own_s / (2 * self.pairs) if self.pairs else float("nan")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["pairs_per_s"] = self.pairs_per_s
        data["bench_cpu_ms_per_call"] = self.bench_cpu_ms_per_call
        data["cpu_ms_per_pair"] = self.cpu_ms_per_pair
        data["cpu"]["foreign_pct"] = self.cpu.foreign_pct
        data["error_samples"] = list(self.error_samples)
        return data


async def drive(
    workers: Sequence[PairWorker], total: int, tally: Tally, on_pair: Callable[[], None]
) -> None:
    """Run ``total`` pairs over ``workers``, all busy at once."""
    remaining = total

    async def work(worker: PairWorker) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            try:
                allocate_s, pair_s = await worker.pair()
            except PairFailed as error:
                tally.fail(error, total)
            else:
                tally.add(allocate_s, pair_s)
            on_pair()

    await asyncio.gather(*(work(worker) for worker in workers))


async def measure(
    mode: str,
    workers: Sequence[PairWorker],
    requests: int,
    warmup: int,
    on_pair: Callable[[], None],
) -> SettingResult:
    """Warm up with ``warmup`` pairs, then measure ``requests`` pairs."""
    await drive(workers, warmup, Tally(), lambda: None)
    tally, meter = Tally(), CpuMeter()
    meter.start()
    started = time.perf_counter()
    await drive(workers, requests, tally, on_pair)
    wall = time.perf_counter() - started
    cpu = meter.stop()
    return SettingResult(
        mode=mode,
        concurrency=len(workers),
        pairs=len(tally.pair_s),
        errors=tally.failures,
        wall_s=wall,
        allocate=Summary.of(tally.allocate_s),
        pair=Summary.of(tally.pair_s),
        cpu=cpu,
        error_samples=tuple(tally.messages),
    )


async def idle_cpu(seconds: float) -> CpuUse:
    """CPU use over ``seconds`` while this process asks nothing of anyone."""
    meter = CpuMeter()
    meter.start()
    await asyncio.sleep(seconds)
    return meter.stop()
