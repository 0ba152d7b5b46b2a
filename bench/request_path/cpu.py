"""Where the machine's CPU goes while a setting runs: machine-wide totals, and seconds per
group of processes (the load generator, uvicorn, Serve's replica and proxies, Ray's actors
and daemons, PostgreSQL). On a 2-core machine everything competes for the same cores, so
this is where the cost of each runtime shows."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

#: Ray sets each worker's process title to ``ray::<what it runs>``.
RAY_TITLES = (
    ("ServeReplica", "Serve replica"),
    ("SERVE_REPLICA", "Serve replica"),
    ("QueueActor", "QueueActor"),
    ("NodeActor", "NodeActor"),
    ("HAProxy", "Serve controller/proxies"),
    ("ProxyActor", "Serve controller/proxies"),
    ("ServeController", "Serve controller/proxies"),
    ("Agent", "Ray dashboard, agents, monitors"),
)
BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq")
OTHER = "other (not this benchmark)"


@dataclass(frozen=True)
class CpuUse:
    """CPU use over an interval; percentages of all cores (100 = every core busy)."""

    machine_busy_pct: float  # user, system, interrupts of every process on the machine
    machine_busy_s: float  # the same in CPU seconds
    interrupts_s: float  # of it, interrupt handling (loopback traffic), charged to no process
    steal_pct: float  # taken by the hypervisor for other machines on the host
    own_pct: float  # this process (the load generator)
    own_s: float  # CPU seconds of this process
    by_group: dict[str, float] = field(default_factory=dict)  # CPU seconds per process group

    @property
    def foreign_pct(self) -> float:
        """The share of all cores taken by work foreign to the benchmark: processes outside
        it, and processes that came and went within the interval (which only the
        machine-wide figure sees; interrupt handling is not counted as foreign)."""
        if self.machine_busy_s <= 0.0:
            return 0.0
        ours = sum(s for group, s in self.by_group.items() if group != OTHER)
        foreign = max(self.machine_busy_s - self.interrupts_s - ours, 0.0)
        return self.machine_busy_pct * foreign / self.machine_busy_s


def _group(info: dict[str, Any], own_pid: int) -> str:
    if info["pid"] == own_pid:
        return "bench (load generator)"
    name = str(info["name"] or "")
    command = " ".join(info["cmdline"] or ())
    if name.startswith("postgres") or command.startswith("postgres"):
        return "postgres"
    if "uvicorn" in command and "--factory" in command:
        return "uvicorn"
    if command.startswith("ray::"):
        title = command.split()[0]
        return next((label for key, label in RAY_TITLES if key in title), "Ray workers, other")
    if name == "haproxy":
        return "haproxy"
    if name in ("raylet", "gcs_server"):
        return "Ray raylet + GCS"
    if "ray" in command:
        return "Ray dashboard, agents, monitors"
    return OTHER


def _process_seconds() -> dict[int, tuple[str, float]]:
    own = os.getpid()
    seen: dict[int, tuple[str, float]] = {}
    for process in psutil.process_iter(["pid", "name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            seen[process.pid] = (_group(process.info, own), times.user + times.system)
    return seen


class CpuMeter:
    """CPU use between :meth:`start` and :meth:`stop`, machine-wide and per process group."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._cores = psutil.cpu_count() or 1

    def start(self) -> None:
        self._processes = _process_seconds()
        self._machine = psutil.cpu_times()
        self._own = self._process.cpu_times()
        self._wall = time.perf_counter()

    def stop(self) -> CpuUse:
        wall = max(time.perf_counter() - self._wall, 1e-9)
        machine, own = psutil.cpu_times(), self._process.cpu_times()
        spent = {
            name: getattr(machine, name) - getattr(self._machine, name) for name in machine._fields
        }
        total = sum(v for k, v in spent.items() if k not in ("guest", "guest_nice")) or 1e-9
        busy = sum(spent.get(name, 0.0) for name in BUSY_FIELDS)
        used = (own.user + own.system) - (self._own.user + self._own.system)
        return CpuUse(
            machine_busy_pct=100.0 * busy / total,
            machine_busy_s=busy,
            interrupts_s=spent.get("irq", 0.0) + spent.get("softirq", 0.0),
            steal_pct=100.0 * spent.get("steal", 0.0) / total,
            own_pct=100.0 * used / (wall * self._cores),
            own_s=used,
            by_group=self._by_group(),
        )

    def _by_group(self) -> dict[str, float]:
        groups: dict[str, float] = {}
        for pid, (group, seconds) in _process_seconds().items():
            before = self._processes.get(pid)
            spent = seconds - (before[1] if before and before[0] == group else 0.0)
            groups[group] = groups.get(group, 0.0) + spent
        ranked = sorted(groups.items(), key=lambda item: -item[1])
        return {group: seconds for group, seconds in ranked if seconds > 0.0}
