r"""Exact assignment by OR-tools' linear sum assignment, for separable objectives.

When no request has an anti-affinity partner and the strategy's score is a sum over
placements (``ScoreModel.separable``), the objective is a maximum-weight bipartite matching:
edge :math:`(r, d)` weighs :math:`U w_r + s(r, d)`. ``SimpleLinearSumAssignment`` needs a
perfect matching of equal sides, so the graph is doubled: left = requests + one copy per
device, right = devices + one copy per request, with zero-cost arcs request → its own copy
("unplaced"), device copy → its device ("unused") and device copy → the copy of every
request it could serve. Any matching of the original graph extends to a perfect one of
equal cost, so the minimum-cost perfect matching with costs :math:`-(U w_r + s)` is the
optimum. Arcs: :math:`2E + R + D`.
"""

from __future__ import annotations

import numpy as np
from ortools.graph.python.linear_sum_assignment import SimpleLinearSumAssignment

from placement.arrays import IndexArray, IntArray
from placement.candidates import Edges
from placement.compiled import CompiledProblem
from placement.objective import UNPLACED, weight_unit
from placement.strategies import ScoreModel


def edge_values(compiled: CompiledProblem, model: ScoreModel, edges: Edges) -> IntArray:
    """Objective gain of each candidate pair when the model is separable: ``U w_r + s(r, d)``."""
    fleet = compiled.fleet
    score = model.edge_scores(compiled.request_minimum[edges.request], edges.target)
    score += model.node_reward(fleet.device_node[edges.target], 1)
    unit = weight_unit(compiled.num_requests)
    return np.asarray(compiled.request_weight[edges.request] * unit + score, dtype=np.int64)


def solve_assignment(
    compiled: CompiledProblem, model: ScoreModel, edges: Edges
) -> IndexArray | None:
    """The maximum-objective matching over ``edges``.

    Returns:
        Device row per request (``UNPLACED`` for none), or ``None`` if the solver reported a
        possible overflow (the caller keeps the greedy plan).

    Raises:
        ValueError: the model is not separable (the matching would ignore node counts).
    """
    if not model.separable:
        raise ValueError("the linear sum assignment is exact only for separable strategies")
    n_requests = compiled.num_requests
    assignment = np.full(n_requests, UNPLACED, dtype=np.intp)
    if len(edges) == 0:
        return assignment
    used, local = np.unique(edges.target, return_inverse=True)
    n_devices = len(used)
    values = edge_values(compiled, model, edges)
    requests = np.arange(n_requests, dtype=np.int64)
    copies = np.arange(n_devices, dtype=np.int64)
    # Left: requests [0, R), device copies [R, R + D'). Right: devices [0, D'), request copies
    # [D', D' + R).
    left = np.concatenate([edges.request, requests, n_requests + copies, n_requests + local])
    right = np.concatenate([local, n_devices + requests, copies, n_devices + edges.request])
    cost = np.concatenate([-values, np.zeros(n_requests + n_devices + len(edges), dtype=np.int64)])
    solver = SimpleLinearSumAssignment()
    solver.add_arcs_with_cost(left.astype(np.int64), right.astype(np.int64), cost.astype(np.int64))
    status = solver.solve()
    if status != SimpleLinearSumAssignment.OPTIMAL:
        return None
    mates = np.fromiter(
        (solver.right_mate(r) for r in range(n_requests)), dtype=np.int64, count=n_requests
    )
    matched = mates < n_devices
    assignment[matched] = used[mates[matched]]
    return assignment
