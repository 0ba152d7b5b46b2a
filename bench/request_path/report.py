"""What a run prints and writes: the results table, where the CPU went, the ratios against
the goals, the per-step profile, and the raw figures as JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.request_path.cpu import CpuUse
from bench.request_path.pairs import SettingResult, Summary
from bench.request_path.profile import ProfileResult

SERVE = "serve"
UVICORN = "uvicorn"
FLOOR = "pg-floor"
FLOOR_TENANT = "pg-floor+tenant-row"

GOAL_THROUGHPUT_SHARE = 0.8
GOAL_ALLOCATE_P50_MS = 3.0


@dataclass
class RunResult:
    """Everything one run measured."""

    meta: dict[str, Any] = field(default_factory=dict)
    settings: list[SettingResult] = field(default_factory=list)
    health: dict[str, Summary] = field(default_factory=dict)  # GET /healthz per HTTP mode
    idle_cpu: dict[str, CpuUse] = field(default_factory=dict)  # server up, no requests
    profile: ProfileResult | None = None


@dataclass(frozen=True)
class Ratio:
    """One derived figure, with its goal when it has one."""

    name: str
    value: float
    unit: str
    goal: str | None = None
    met: bool | None = None

    def shown(self) -> str:
        if math.isnan(self.value):
            return "n/a"
        if self.unit == "%":
            return f"{self.value:.0f}%"
        return f"{self.value:.2f}{self.unit}"


def _find(results: Sequence[SettingResult], mode: str, concurrency: int) -> SettingResult | None:
    return next(
        (r for r in results if r.mode == mode and r.concurrency == concurrency and r.pairs), None
    )


def results_table(results: Sequence[SettingResult]) -> Table:
    table = Table(title="allocate + release pairs (latencies in ms)")
    table.add_column("mode", no_wrap=True)
    for column in ("clients", "alloc p50", "alloc p99", "pair p50", "pair p99", "pairs/s"):
        table.add_column(column, justify="right")
    for column in ("errors", "CPU busy", "steal", "CPU ms/pair", "bench ms/call"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r.mode,
            str(r.concurrency),
            f"{r.allocate.p50_ms:.2f}",
            f"{r.allocate.p99_ms:.2f}",
            f"{r.pair.p50_ms:.2f}",
            f"{r.pair.p99_ms:.2f}",
            f"{r.pairs_per_s:,.0f}",
            str(r.errors),
            f"{r.cpu.machine_busy_pct:.0f}%",
            f"{r.cpu.steal_pct:.0f}%",
            f"{r.cpu_ms_per_pair:.1f}",
            f"{r.bench_cpu_ms_per_call:.2f}",
        )
    return table


def cpu_table(results: Sequence[SettingResult]) -> Table:
    """CPU milliseconds per pair by process group, for every setting."""
    table = Table(title="where the CPU goes: CPU ms per pair, by process (all cores)")
    table.add_column("processes", no_wrap=True)
    for r in results:
        table.add_column(f"{r.mode} × {r.concurrency}", justify="right")
    groups: list[str] = []
    for r in results:
        groups += [g for g in r.cpu.by_group if g not in groups]
    for group in groups:
        cells = [_per_pair(r.cpu.by_group.get(group, 0.0), r.pairs) for r in results]
        table.add_row(group, *cells)
    table.add_row("[bold]machine total[/bold]", *[f"{r.cpu_ms_per_pair:.2f}" for r in results])
    return table


def _per_pair(seconds: float, pairs: int) -> str:
    return f"{1000.0 * seconds / pairs:.2f}" if pairs and seconds >= 0.0005 * pairs else "·"


def _share(numerator: SettingResult | None, denominator: SettingResult | None) -> float:
    if numerator is None or denominator is None or not denominator.pairs_per_s:
        return float("nan")
    return numerator.pairs_per_s / denominator.pairs_per_s


def _p50_gap(upper: SettingResult | float | None, lower: SettingResult | float | None) -> float:
    def p50(side: SettingResult | float | None) -> float:
        if side is None:
            return float("nan")
        return side if isinstance(side, float) else side.allocate.p50_ms

    return p50(upper) - p50(lower)


def _p50_share(upper: SettingResult | None, lower: SettingResult | None) -> float:
    if upper is None or lower is None:
        return float("nan")
    return upper.allocate.p50_ms / lower.allocate.p50_ms


def goal_ratios(run: RunResult, low: int, high: int) -> list[Ratio]:
    """The figures the goals are about, then where the allocate latency goes."""
    results, profile = run.settings, run.profile
    serve_low, serve_high = _find(results, SERVE, low), _find(results, SERVE, high)
    uv_low, uv_high = _find(results, UVICORN, low), _find(results, UVICORN, high)
    floor_low, floor_high = _find(results, FLOOR, low), _find(results, FLOOR, high)
    share = _share(serve_high, uv_high)
    serve_p50 = serve_low.allocate.p50_ms if serve_low else float("nan")
    collapse = _share(serve_high, serve_low)
    in_process = profile.allocate.p50_ms if profile else None
    return [
        Ratio(
            f"Serve ÷ uvicorn throughput, {high} clients",
            share,
            "×",
            f"≥ {GOAL_THROUGHPUT_SHARE:.2f}",
            None if math.isnan(share) else share >= GOAL_THROUGHPUT_SHARE,
        ),
        Ratio(
            f"Serve allocate p50, {low} client(s)",
            serve_p50,
            " ms",
            f"≤ {GOAL_ALLOCATE_P50_MS:.0f} ms",
            None if math.isnan(serve_p50) else serve_p50 <= GOAL_ALLOCATE_P50_MS,
        ),
        Ratio(
            f"Serve pairs/s at {high} ÷ at {low} clients (no collapse)",
            collapse,
            "×",
            "≥ 1.00",
            None if math.isnan(collapse) else collapse >= 1.0,
        ),
        Ratio(f"uvicorn pairs/s at {high} ÷ at {low} clients", _share(uv_high, uv_low), "×"),
        Ratio(
            f"uvicorn allocate p50 − PG floor, {low} client(s)", _p50_gap(uv_low, floor_low), " ms"
        ),
        Ratio(
            f"Serve allocate p50 − PG floor, {low} client(s)", _p50_gap(serve_low, floor_low), " ms"
        ),
        Ratio(
            f"Serve allocate p50 ÷ PG floor, {low} client(s)", _p50_share(serve_low, floor_low), "×"
        ),
        Ratio(f"uvicorn ÷ PG floor throughput, {high} clients", _share(uv_high, floor_high), "×"),
        Ratio(f"Serve ÷ PG floor throughput, {high} clients", _share(serve_high, floor_high), "×"),
        Ratio(
            f"HTTP layers (uvicorn p50 − in-process p50), {low} client(s)",
            _p50_gap(uv_low, in_process),
            " ms",
        ),
        Ratio(
            f"Ray Serve layers (Serve p50 − uvicorn p50), {low} client(s)",
            _p50_gap(serve_low, uv_low),
            " ms",
        ),
        *[
            Ratio(f"GET /healthz p50 via {mode} (bare HTTP round trip)", probe.p50_ms, " ms")
            for mode, probe in run.health.items()
        ],
        *[
            Ratio(f"machine busy with {mode} up but no requests", use.machine_busy_pct, "%")
            for mode, use in run.idle_cpu.items()
        ],
    ]


def ratios_table(ratios: Sequence[Ratio]) -> Table:
    table = Table(title="ratios (one run: compare these, not absolute figures)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("goal", justify="right")
    table.add_column("", justify="center")
    marks = {True: "[green]met[/green]", False: "[red]missed[/red]", None: ""}
    for ratio in ratios:
        table.add_row(ratio.name, ratio.shown(), ratio.goal or "", marks[ratio.met])
    return table


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def profile_table(profile: ProfileResult) -> Table:
    table = Table(title=f"in-process service, {profile.pairs} sequential pairs: p50 per step (ms)")
    table.add_column("step")
    table.add_column("allocate", justify="right")
    table.add_column("release", justify="right")
    for step in profile.steps:
        if step.allocate_p50_ms is None and step.release_p50_ms is None:
            continue
        table.add_row(step.label, _ms(step.allocate_p50_ms), _ms(step.release_p50_ms))
    table.add_row(
        "use case's own Python (total − steps)",
        _ms(profile.allocate_unwrapped_p50_ms),
        _ms(profile.release_unwrapped_p50_ms),
    )
    table.add_row(
        "[bold]whole call[/bold] (p50; p99)",
        f"{profile.allocate.p50_ms:.3f}; {profile.allocate.p99_ms:.2f}",
        f"{profile.release.p50_ms:.3f}; {profile.release.p99_ms:.2f}",
    )
    return table


def _finite(value: Any) -> Any:
    """``value`` with every NaN replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def write_json(path: Path, run: RunResult, ratios: Sequence[Ratio]) -> None:
    data = {
        "meta": run.meta,
        "settings": [r.to_json() for r in run.settings],
        "ratios": [asdict(r) for r in ratios],
        "health": {mode: asdict(probe) for mode, probe in run.health.items()},
        "idle_cpu": {mode: asdict(use) for mode, use in run.idle_cpu.items()},
        "profile": run.profile.to_json() if run.profile else None,
    }
    path.write_text(json.dumps(_finite(data), indent=2, default=str) + "\n")
