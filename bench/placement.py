"""Placement optimizer vs greedy on generated fleets: objective, proven bound and solve time.

    python -m bench.placement                       # 100×1,000, 1,000×5,000, 5,000×20,000
    python -m bench.placement --sizes 100x1000 --seeds 20 --markdown

Each instance is a generated fleet (nodes of 40 devices with region/zone labels, GPU and spot
nodes with taints, cordoned and draining nodes, three device sizes, three Android versions,
skewed leased load) and a batch of requests (priority tiers 1–5, region/zone/GPU selectors,
Android versions, tolerations). Six scenarios per instance:

* ``drain/binpack``: a queue drain, no anti-affinity, binpack (exact assignment or flow);
* ``drain/spread``: the same requests under spread (node-count terms: the flow);
* ``batch/<strategy>``: the same fleet and asks with about 40% of the requests in users'
  batches of 2–8 with anti-affinity, under each strategy (CP-SAT, bounded by the flow
  without anti-affinity).

For each: the greedy plan (compile + greedy, timed as ``solve`` builds it), the optimizer's
plan (``placement.solve`` with a time limit scaled per size), and the best bound it proved;
solve times p50/p95 over the seeds. Figures go to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from placement.compiled import compile_problem
from placement.greedy_batch import greedy_assign
from placement.objective import class_edge_scores, evaluate, weight_unit
from placement.plan import PlacementPlan, SolverParams
from placement.problem import Device, Node, PlacementProblem, Request, Strategy, Taint, Toleration
from placement.solve import solve
from placement.strategies import score_model

DEVICES_PER_NODE = 40
REGIONS = ("eu", "us", "ap")
REGION_SHARE = (0.5, 0.35, 0.15)
SIZES = ((2.0, 4096.0, 32768.0), (4.0, 8192.0, 65536.0), (8.0, 16384.0, 131072.0))
SIZE_SHARE = (0.5, 0.35, 0.15)
ANDROID = ("12", "13", "14")
ANDROID_SHARE = (0.2, 0.4, 0.4)
PRIORITY_SHARE = (0.4, 0.25, 0.15, 0.12, 0.08)
GPU_TAINT = Taint("gpu", "true")
SPOT_TAINT = Taint("spot", "true")
DEFAULT_SIZES = ((100, 1000), (1000, 5000), (5000, 20000))
#: (scenario, strategy, anti-affinity batches)
SCENARIOS = (
    ("drain/binpack", Strategy.BINPACK, False),
    ("drain/spread", Strategy.SPREAD, False),
    ("batch/binpack", Strategy.BINPACK, True),
    ("batch/spread", Strategy.SPREAD, True),
    ("batch/balanced", Strategy.BALANCED, True),
    ("batch/least_loaded", Strategy.LEAST_LOADED, True),
)


def time_limit(requests: int) -> float:
    """The whole solve's budget per size: 0.15 s up to 200 requests, 2 s up to 2,000, else 5 s."""
    if requests <= 200:
        return 0.15
    return 2.0 if requests <= 2000 else 5.0


def generate(requests: int, devices: int, seed: int, *, batches: bool) -> PlacementProblem:
    """A fleet of ``devices`` devices on nodes of 40, and ``requests`` requests for them.

    Args:
        requests: number of requests.
        devices: number of devices (rounded up to whole nodes).
        seed: the generator's seed (the fleet and the asks do not depend on ``batches``).
        batches: put about 40% of the requests in anti-affinity groups of 2–8 (one user's
            batch); otherwise no anti-affinity.
    """
    rng = np.random.default_rng(seed)
    n_nodes = -(-devices // DEVICES_PER_NODE)
    nodes: list[Node] = []
    fleet: list[Device] = []
    for n in range(n_nodes):
        region = str(rng.choice(REGIONS, p=REGION_SHARE))
        labels = {"region": region, "zone": f"{region}-{'abc'[rng.integers(3)]}"}
        taints: tuple[Taint, ...] = ()
        kind = rng.random()
        if kind < 0.08:
            labels["gpu"] = "true"
            taints = (GPU_TAINT,)
        elif kind < 0.23:
            labels["pool"] = "spot"
            taints = (SPOT_TAINT,)
        status = str(rng.choice(("ready", "cordoned", "draining"), p=(0.95, 0.03, 0.02)))
        node_id = f"n{n}"
        nodes.append(Node(node_id, labels, taints, status))
        dominant = int(rng.choice(3, p=SIZE_SHARE))
        leased_share = rng.beta(0.8, 1.2)
        for i in range(DEVICES_PER_NODE):
            size = dominant if rng.random() < 0.7 else int(rng.choice(3, p=SIZE_SHARE))
            roll = rng.random()
            state = "allocated" if roll < leased_share else "available"
            if roll > 0.98:
                state = "resetting"
            android = str(rng.choice(ANDROID, p=ANDROID_SHARE))
            fleet.append(Device(f"{node_id}-d{i}", node_id, SIZES[size], android, {}, state))
    batch_rng = np.random.default_rng([seed, 1])
    asks: list[Request] = []
    group_left = 0
    group: str | None = None
    tenant = "t0"
    for r in range(requests):
        if group_left == 0:
            group = None
            tenant = f"t{rng.integers(20)}"
            if batches and batch_rng.random() < 0.4 / 5:
                group_left = int(batch_rng.integers(2, 9))
                group = f"batch{r}"
        size = int(rng.choice(3, p=SIZE_SHARE))
        selector: dict[str, str] = {}
        tolerations: tuple[Toleration, ...] = ()
        roll = rng.random()
        if roll < 0.5:
            selector["region"] = str(rng.choice(REGIONS, p=REGION_SHARE))
        elif roll < 0.55:
            selector["zone"] = f"{rng.choice(REGIONS, p=REGION_SHARE)}-{'abc'[rng.integers(3)]}"
        if rng.random() < 0.1:
            selector["gpu"] = "true"
            tolerations = (Toleration("gpu"),)
        elif rng.random() < 0.2:
            tolerations = (Toleration("spot", "true"),)
        version = str(rng.choice(ANDROID, p=ANDROID_SHARE)) if rng.random() < 0.3 else None
        priority = int(rng.choice(5, p=PRIORITY_SHARE)) + 1
        asks.append(
            Request(f"r{r}", SIZES[size], version, selector, tolerations, priority, tenant, group)
        )
        group_left = max(group_left - 1, 0)
    return PlacementProblem(tuple(nodes), tuple(fleet), tuple(asks))


@dataclass(frozen=True)
class Run:
    """One instance solved once by the greedy and by the optimizer."""

    scenario: str
    size: tuple[int, int]
    seed: int
    greedy_objective: int
    greedy_placed: int
    greedy_seconds: float
    plan: PlacementPlan

    @property
    def unit(self) -> int:
        return weight_unit(self.size[0])


def greedy_only(problem: PlacementProblem, strategy: Strategy) -> tuple[int, int, float]:
    """The greedy plan's objective, placed requests and time (compile + greedy)."""
    started = time.perf_counter()
    compiled = compile_problem(problem)
    model = score_model(compiled.fleet, strategy)
    assignment = greedy_assign(compiled, model, class_edge_scores(compiled, model))
    seconds = time.perf_counter() - started
    placed = int((assignment >= 0).sum())
    return evaluate(compiled, model, assignment).objective, placed, seconds


def measure(sizes: Sequence[tuple[int, int]], seeds: int, console: Console) -> list[Run]:
    """Every size × seed × scenario, with a progress bar."""
    warm = generate(20, 200, 0, batches=True)
    solve(warm, SolverParams(max_time_seconds=0.2, strategy=Strategy.SPREAD))  # load CP-SAT
    runs: list[Run] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("placement", total=len(sizes) * seeds * len(SCENARIOS))
        for requests, devices in sizes:
            for seed in range(seeds):
                for scenario, strategy, batches in SCENARIOS:
                    progress.update(
                        task, description=f"{requests}×{devices} seed {seed} {scenario}"
                    )
                    problem = generate(requests, devices, seed, batches=batches)
                    greedy, placed, greedy_seconds = greedy_only(problem, strategy)
                    params = SolverParams(
                        max_time_seconds=time_limit(requests), strategy=strategy, random_seed=seed
                    )
                    plan = solve(problem, params)
                    runs.append(
                        Run(
                            scenario,
                            (requests, devices),
                            seed,
                            greedy,
                            placed,
                            greedy_seconds,
                            plan,
                        )
                    )
                    progress.advance(task)
    return runs


@dataclass(frozen=True)
class Row:
    """One table row: a size and scenario over its seeds."""

    size: str
    scenario: str
    limit_s: float
    solvers: str
    placed: str
    weight_gain: str
    score_gain: str
    ratio: str
    gap: str
    proven: str
    solve_ms: str
    greedy_ms: str

    def cells(self) -> list[str]:
        return [
            self.size,
            self.scenario,
            f"{self.limit_s:g}",
            self.solvers,
            self.placed,
            self.weight_gain,
            self.score_gain,
            self.ratio,
            self.gap,
            self.proven,
            self.solve_ms,
            self.greedy_ms,
        ]


HEADERS = [
    "R × D",
    "scenario",
    "limit s",
    "solver",
    "placed greedy → opt",
    "Δ priority",
    "Δ score",
    "opt / greedy",
    "gap to bound",
    "proven",
    "solve ms p50 / p95",
    "greedy ms p50",
]


def summarize(runs: Sequence[Run]) -> list[Row]:
    """One row per size and scenario."""
    rows: list[Row] = []
    keys = list(dict.fromkeys((r.size, r.scenario) for r in runs))
    for size, scenario in keys:
        group = [r for r in runs if r.size == size and r.scenario == scenario]
        plans = [r.plan for r in group]
        solvers = sorted({p.solver.value for p in plans})
        unit = group[0].unit
        weight_gain = [
            (p.placed_weight - (r.greedy_objective // unit))
            for r, p in zip(group, plans, strict=True)
        ]
        score_gain = [
            p.score - (r.greedy_objective % unit) for r, p in zip(group, plans, strict=True)
        ]
        ratios = [p.objective / r.greedy_objective for r, p in zip(group, plans, strict=True)]
        gaps = [
            (p.best_bound - p.objective) / p.best_bound * 100 if p.best_bound else float("nan")
            for p in plans
        ]
        gap_points = [p.best_bound - p.objective for p in plans if p.best_bound is not None]
        solve_ms = np.asarray([p.solve_seconds for p in plans]) * 1000
        greedy_ms = np.asarray([r.greedy_seconds for r in group]) * 1000
        placed_greedy = statistics.mean(r.greedy_placed for r in group)
        placed_opt = statistics.mean(len(p.assignments) for p in plans)
        rows.append(
            Row(
                size=f"{size[0]:,}×{size[1]:,}",
                scenario=scenario,
                limit_s=time_limit(size[0]),
                solvers="/".join(solvers),
                placed=f"{placed_greedy:,.1f} → {placed_opt:,.1f}",
                weight_gain=f"+{statistics.mean(weight_gain):.1f} (max +{max(weight_gain)})",
                score_gain=f"+{statistics.mean(score_gain):,.0f}",
                ratio=f"{min(ratios):.6f} / {max(ratios):.6f}",
                gap=(
                    f"{max(gaps):.5f}% (≤ {max(gap_points):,} pts)"
                    if len(gap_points) == len(plans)
                    else "no bound"
                ),
                proven=f"{sum(p.proven_optimal for p in plans)}/{len(plans)}",
                solve_ms=f"{np.percentile(solve_ms, 50):,.0f} / {np.percentile(solve_ms, 95):,.0f}",
                greedy_ms=f"{np.percentile(greedy_ms, 50):,.0f}",
            )
        )
    return rows


def verdicts(runs: Sequence[Run]) -> list[str]:
    """The goals, checked: never below greedy; ≤ 1% from the bound and p95 ≤ 200 ms at 100×1,000."""
    lines = []
    below = [r for r in runs if r.plan.objective < r.greedy_objective]
    lines.append(
        "optimizer ≥ greedy on every instance: "
        + ("yes" if not below else f"NO ({len(below)} instances below)")
    )
    small = [r for r in runs if r.size == (100, 1000)]
    if small:
        p95 = float(np.percentile([r.plan.solve_seconds for r in small], 95)) * 1000
        worst = max(
            (r.plan.best_bound - r.plan.objective) / r.plan.best_bound * 100
            if r.plan.best_bound
            else float("inf")
            for r in small
        )
        lines.append(
            f"100×1,000: worst gap to the proven bound {worst:.5f}% (goal ≤ 1%),"
            f" solve p95 {p95:.0f} ms (goal ≤ 200 ms)"
        )
    return lines


def markdown(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse options, run every instance with a progress bar, print the table and verdicts."""
    parser = argparse.ArgumentParser(description="Placement optimizer vs greedy benchmark.")
    parser.add_argument(
        "--sizes",
        default=",".join(f"{r}x{d}" for r, d in DEFAULT_SIZES),
        help="comma-separated REQUESTSxDEVICES (default: %(default)s)",
    )
    parser.add_argument("--seeds", type=int, default=5, help="instances per size (default: 5)")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    args = parser.parse_args(argv)
    sizes = [(int(r), int(d)) for r, d in (s.lower().split("x") for s in args.sizes.split(","))]
    console = Console(width=max(Console().width, 180))
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    runs = measure(sizes, args.seeds, console)
    load_after = os.getloadavg()[0]
    table = Table(title=f"placement: optimizer vs greedy ({args.seeds} seeds per size)")
    for header in HEADERS:
        table.add_column(header, justify="left" if header in ("scenario", "solver") else "right")
    rows = summarize(runs)
    for row in rows:
        table.add_row(*row.cells())
    console.print(table)
    for line in verdicts(runs):
        console.print(line)
    console.print(
        f"total {time.perf_counter() - started:.0f} s on {os.cpu_count()} cores;"
        f" 1-minute load average {load_before:.2f} before, {load_after:.2f} after"
    )
    if args.markdown:
        console.print(markdown(rows), markup=False, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
