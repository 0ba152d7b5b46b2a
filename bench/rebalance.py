"""Rebalance planner: CP-SAT vs the greedy planner (best single move at a time), in one run.

    python -m bench.rebalance                      # 50×20 and 200×20 fleets, 3 seeds
    python -m bench.rebalance --sizes 200x20 --moves 20 100 --seconds 2

Each instance is a fleet of ``nodes`` nodes of ``devices`` devices (two sizes, three Android
versions), half of them leased, the leases skewed onto a third of the nodes (as after an
outage, or after binpack placed them); a few devices per node are leased by leases not
considered (load). For each strategy and move budget it prints the objective gain (after −
before) of the greedy planner and of CP-SAT (hinted with greedy; never worse), the moves
each plans, how often CP-SAT proved its plan optimal within the time, and its time. Figures
go to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Hashable

import numpy as np
from rich.console import Console
from rich.table import Table

from placement.plan import SolverParams
from placement.problem import Device, Node, PlacementProblem, Request, Strategy
from placement.rebalance import STAY_BONUS, RebalancePlan, plan_rebalance

SIZES = ((2.0, 4096.0, 32768.0), (4.0, 8192.0, 65536.0))
ANDROID = ("12", "13", "14")


def fleet(nodes: int, devices: int, seed: int) -> tuple[PlacementProblem, dict[Hashable, Hashable]]:
    """Half the devices leased, three quarters of the leases on the first third of nodes."""
    rng = np.random.default_rng(seed)
    node_list = tuple(Node(f"n{n}") for n in range(nodes))
    device_list: list[Device] = []
    requests: list[Request] = []
    current: dict[Hashable, Hashable] = {}
    hot = max(nodes // 3, 1)
    for n in range(nodes):
        share = 0.9 if n < hot else 0.25
        for d in range(devices):
            size = SIZES[int(rng.random() < 0.3)]
            android = ANDROID[int(rng.integers(0, len(ANDROID)))]
            roll = rng.random()
            state = "available"
            if roll < 0.05:
                state = "allocated"  # load of a lease not considered
            elif roll < share:
                state = "leased"
            device_id = f"n{n}-d{d}"
            device_list.append(
                Device(
                    device_id,
                    f"n{n}",
                    size,
                    android,
                    {},
                    "allocated" if state != "available" else state,
                )
            )
            if state == "leased":
                lease = f"lease-{device_id}"
                requests.append(Request(lease, size, android))
                current[lease] = device_id
    return PlacementProblem(node_list, tuple(device_list), tuple(requests)), current


def net(plan: RebalancePlan) -> int:
    """What the plan gains, the disturbance of its moves counted (what both maximize)."""
    return plan.objective_after - plan.objective_before - STAY_BONUS * len(plan.moves)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["50x20", "200x20"])
    parser.add_argument("--moves", nargs="+", type=int, default=[10, 50])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    table = Table(title="rebalance: greedy vs CP-SAT (objective gain, moves; medians over seeds)")
    for column in (
        "fleet",
        "leases",
        "strategy",
        "max moves",
        "greedy gain",
        "CP-SAT gain",
        "ratio",
        "greedy moves",
        "CP-SAT moves",
        "proven optimal",
        "CP-SAT s",
    ):
        table.add_column(column, justify="right")
    for size in args.sizes:
        nodes, devices = (int(x) for x in size.split("x"))
        instances = [fleet(nodes, devices, seed) for seed in range(args.seeds)]
        for strategy in (Strategy.SPREAD, Strategy.BINPACK, Strategy.BALANCED):
            params = SolverParams(max_time_seconds=args.seconds, strategy=strategy)
            for budget in args.moves:
                rows = []
                for problem, current in instances:
                    greedy = plan_rebalance(problem, current, params, budget, use_cp_sat=False)
                    best = plan_rebalance(problem, current, params, budget)
                    rows.append((greedy, best))
                g = statistics.median(net(a) for a, _ in rows)
                c = statistics.median(net(b) for _, b in rows)
                table.add_row(
                    size,
                    str(len(instances[0][1])),
                    strategy.value,
                    str(budget),
                    f"{g:,.0f}",
                    f"{c:,.0f}",
                    f"{c / g:.2f}×" if g else "–",
                    f"{statistics.median(len(a.moves) for a, _ in rows):.0f}",
                    f"{statistics.median(len(b.moves) for _, b in rows):.0f}",
                    f"{sum(b.status == 'OPTIMAL' for _, b in rows)}/{len(rows)}",
                    f"{statistics.median(b.solve_seconds for _, b in rows):.2f}",
                )
    Console().print(table)


if __name__ == "__main__":
    main()
