"""CP-SAT over windows of requests: large-neighbourhood search for problems too big for one model.

One CP-SAT model over a thousand requests and their candidates does not even close its LP in
a few seconds on two cores, while a model over ~150 requests solves to optimality in about
0.1 s. So a large problem is improved window by window: re-place the window's requests
with everyone else fixed (``cpsat.solve_cpsat(window=...)``), keep the result (it starts from
the current plan, so it never gets worse), and move to the next window until the deadline.

Windows, in order:

1. around each unplaced request that has feasible devices: it, and the requests holding
   devices it could take (a displaced holder may have somewhere else to go);
2. sweeps over all placed requests grouped by node (requests sharing nodes compete for
   their devices and their node terms), then in random order, again and again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from placement.arrays import IndexArray
from placement.candidates import Edges
from placement.compiled import CompiledProblem
from placement.cpsat import solve_cpsat
from placement.objective import Evaluation, evaluate
from placement.strategies import ScoreModel

#: The most one window may spend in CP-SAT.
WINDOW_SECONDS = 0.25
#: A window is not started with less time than this left.
MIN_WINDOW_SECONDS = 0.05


@dataclass(frozen=True, eq=False)
class WindowsResult:
    """The plan after the windows, and what they did."""

    assignment: IndexArray
    evaluation: Evaluation
    windows: int
    improved: int


def improve_in_windows(
    compiled: CompiledProblem,
    model: ScoreModel,
    pool: Edges,
    start: IndexArray,
    *,
    deadline: float,
    window_requests: int,
    num_workers: int,
    random_seed: int,
    upper_bound: int | None = None,
) -> WindowsResult:
    """Re-place windows of ``window_requests`` requests with CP-SAT until ``deadline``, or
    until the plan reaches ``upper_bound`` (it is then optimal).

    Args:
        compiled: the problem.
        model: the strategy's scores.
        pool: candidate (request, device type) pairs for every request.
        start: the plan to improve (the greedy plan).
        deadline: ``time.perf_counter()`` value to stop by.
        window_requests: requests per window.
        num_workers: CP-SAT's search workers.
        random_seed: seeds CP-SAT and the random sweeps.
        upper_bound: a proven bound on the objective, if known.
    """
    current = start
    best = evaluate(compiled, model, current)
    windows = improved = 0
    for window in _windows(compiled, current, window_requests, random_seed):
        now = time.perf_counter()
        if deadline - now < MIN_WINDOW_SECONDS:
            break
        if upper_bound is not None and best.objective >= upper_bound:
            break
        result = solve_cpsat(
            compiled,
            model,
            pool,
            current,
            deadline=min(deadline, now + WINDOW_SECONDS),
            num_workers=num_workers,
            random_seed=random_seed + windows,
            window=window,
            upper_bound=upper_bound,
        )
        windows += 1
        if result.assignment is None:
            continue
        evaluation = evaluate(compiled, model, result.assignment)
        if evaluation.objective > best.objective:
            current, best = result.assignment, evaluation
            improved += 1
    return WindowsResult(current, best, windows, improved)


def _windows(
    compiled: CompiledProblem, start: IndexArray, size: int, seed: int
) -> Iterator[IndexArray]:
    """Windows of request rows (see the module doc). Built from ``start``; later windows
    stay useful as the plan changes because they only pick which requests to re-place."""
    size = max(size, 1)
    yield from _around_unplaced(compiled, start, size)
    placed = np.flatnonzero(start >= 0)
    if len(placed) == 0:
        return
    nodes = compiled.fleet.device_node[start[placed]]
    by_node = placed[np.argsort(nodes, kind="stable")]
    yield from _chunks(by_node, size)
    rng = np.random.default_rng(seed)
    while True:
        yield from _chunks(rng.permutation(compiled.num_requests).astype(np.intp), size)


def _around_unplaced(
    compiled: CompiledProblem, start: IndexArray, size: int
) -> Iterator[IndexArray]:
    holder = np.full(compiled.fleet.num_devices, -1, dtype=np.intp)
    placed = np.flatnonzero(start >= 0)
    holder[start[placed]] = placed
    waiting = [
        row
        for row in np.flatnonzero(start < 0).tolist()
        if len(compiled.classes[compiled.request_class[row]].feasible)
    ]
    rows: list[int] = []
    for row in waiting:
        feasible = compiled.classes[compiled.request_class[row]].feasible
        holders = holder[feasible]
        rows.append(row)
        rows.extend(holders[holders >= 0][: max(size // 4, 1)].tolist())
        if len(rows) >= size:
            yield np.unique(np.asarray(rows, dtype=np.intp))
            rows = []
    if rows:
        yield np.unique(np.asarray(rows, dtype=np.intp))


def _chunks(rows: IndexArray, size: int) -> Iterator[IndexArray]:
    for begin in range(0, len(rows), size):
        yield np.sort(rows[begin : begin + size])
