"""The run's tables as Markdown, to paste into ``docs/benchmarks.md``."""

from __future__ import annotations

from collections.abc import Sequence

from bench.request_path.pairs import SettingResult
from bench.request_path.report import Ratio, RunResult


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> str:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _results(settings: Sequence[SettingResult]) -> str:
    header = ["mode", "clients", "alloc p50", "alloc p99", "pair p50", "pair p99", "pairs/s"]
    header += ["errors", "CPU busy", "CPU ms/pair"]
    rows = [
        [
            f"`{r.mode}`",
            str(r.concurrency),
            f"{r.allocate.p50_ms:.2f}",
            f"{r.allocate.p99_ms:.2f}",
            f"{r.pair.p50_ms:.2f}",
            f"{r.pair.p99_ms:.2f}",
            f"{r.pairs_per_s:,.0f}",
            str(r.errors),
            f"{r.cpu.machine_busy_pct:.0f}%",
            f"{r.cpu_ms_per_pair:.1f}",
        ]
        for r in settings
    ]
    return _table(header, rows, right_from=1)


def _cpu(settings: Sequence[SettingResult]) -> str:
    http = [r for r in settings if r.cpu.by_group and r.mode in ("uvicorn", "serve")]
    groups: list[str] = []
    for r in http:
        groups += [g for g in r.cpu.by_group if g not in groups]
    rows = [
        [group, *[_per_pair(r.cpu.by_group.get(group, 0.0), r.pairs) for r in http]]
        for group in groups
    ]
    rows.append(["**machine total**", *[f"**{r.cpu_ms_per_pair:.2f}**" for r in http]])
    return _table(["processes", *[f"{r.mode} × {r.concurrency}" for r in http]], rows)


def _per_pair(seconds: float, pairs: int) -> str:
    return f"{1000.0 * seconds / pairs:.2f}" if seconds > 0.0 else "–"


def _ratios(ratios: Sequence[Ratio]) -> str:
    marks = {True: "met", False: "**missed**", None: ""}
    rows = [[r.name, r.shown(), r.goal or "", marks[r.met]] for r in ratios]
    return _table(["figure", "value", "goal", ""], rows)


def _step_label(label: str, nested: bool) -> str:
    return f"↳ {label.strip()}" if nested else f"`{label}`"


def _profile(run: RunResult) -> str:
    profile = run.profile
    if profile is None:
        return ""

    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    rows = [
        [
            f"`{s.label.strip()}`" if not s.nested else f"  ↳ {s.label.strip()}",
            ms(s.allocate_p50_ms),
            ms(s.release_p50_ms),
        ]
        for s in profile.steps
        if s.allocate_p50_ms is not None or s.release_p50_ms is not None
    ]
    rows.append(
        [
            "use case's own Python (total − steps)",
            ms(profile.allocate_unwrapped_p50_ms),
            ms(profile.release_unwrapped_p50_ms),
        ]
    )
    rows.append(
        [
            "**whole call** p50 (p99)",
            f"**{profile.allocate.p50_ms:.2f}** ({profile.allocate.p99_ms:.2f})",
            f"**{profile.release.p50_ms:.2f}** ({profile.release.p99_ms:.2f})",
        ]
    )
    return _table(["step (p50, ms)", "allocate", "release"], rows)


def render(run: RunResult, ratios: Sequence[Ratio]) -> str:
    meta = run.meta
    parts = [
        f"`{meta['command']}` — {meta['date']}, commit `{meta['commit']}`, "
        f"{meta['cpus']} × {meta['cpu_model']}, PostgreSQL {meta['postgres']}, Ray {meta['ray']}",
        "Latencies in ms.\n\n" + _results(run.settings),
        "CPU ms per pair, by process (all cores):\n\n" + _cpu(run.settings),
        _ratios(ratios),
        _profile(run),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"
