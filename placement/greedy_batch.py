"""Vectorized greedy for a whole batch: the plan that always exists, and the CP-SAT hint.

Requests go by priority (highest first), then the most constrained first (fewest feasible
devices), then submission order. Each takes the free feasible device with the highest score
given the placements made so far (the node term follows the plan's counts), skipping nodes
that already hold a member of its anti-affinity group. One request costs a few numpy passes
over its feasible devices.
"""

from __future__ import annotations

import numpy as np

from placement.arrays import IndexArray, IntArray
from placement.compiled import CompiledProblem
from placement.objective import UNPLACED, node_counts
from placement.strategies import ScoreModel


def greedy_order(compiled: CompiledProblem) -> IndexArray:
    """Request rows in the order the greedy places them."""
    sizes = np.asarray([len(c.feasible) for c in compiled.classes], dtype=np.int64)
    rows = np.arange(compiled.num_requests)
    by_size = sizes[compiled.request_class] if len(sizes) else np.zeros(0, dtype=np.int64)
    return np.lexsort((rows, by_size, -compiled.request_weight)).astype(np.intp)


def greedy_assign(
    compiled: CompiledProblem,
    model: ScoreModel,
    class_scores: tuple[IntArray, ...],
    start: IndexArray | None = None,
) -> IndexArray:
    """Place every request it can, keeping the placements of ``start`` (if given).

    Args:
        compiled: the problem.
        model: the strategy's scores.
        class_scores: ``objective.class_edge_scores(compiled, model)``.
        start: device row per request to keep (``UNPLACED`` for the ones to place).

    Returns:
        Device row per request, ``UNPLACED`` when no free feasible device is left for it.
    """
    fleet = compiled.fleet
    if start is None:
        assignment = np.full(compiled.num_requests, UNPLACED, dtype=np.intp)
    else:
        assignment = start.astype(np.intp, copy=True)
    taken = np.zeros(fleet.num_devices, dtype=np.bool_)
    taken[assignment[assignment >= 0]] = True
    counts = node_counts(compiled, assignment)
    all_nodes = np.arange(fleet.num_nodes)
    next_reward = model.node_reward(all_nodes, counts + 1)
    group_nodes = np.zeros((compiled.num_groups, fleet.num_nodes), dtype=np.bool_)
    placed = np.flatnonzero((assignment >= 0) & (compiled.request_group >= 0))
    group_nodes[compiled.request_group[placed], fleet.device_node[assignment[placed]]] = True
    class_nodes = [fleet.device_node[c.feasible] for c in compiled.classes]

    for row in greedy_order(compiled):
        if assignment[row] != UNPLACED:
            continue
        c = compiled.request_class[row]
        feasible = compiled.classes[c].feasible
        if len(feasible) == 0:
            continue
        nodes = class_nodes[c]
        valid = ~taken[feasible]
        group = compiled.request_group[row]
        if group >= 0:
            valid &= ~group_nodes[group, nodes]
        total = np.where(valid, class_scores[c] + next_reward[nodes], -1)
        best = int(np.argmax(total))
        if total[best] < 0:
            continue
        device = int(feasible[best])
        node = int(nodes[best])
        assignment[row] = device
        taken[device] = True
        counts[node] += 1
        next_reward[node] = model.node_reward(all_nodes[node : node + 1], counts[node] + 1)[0]
        if group >= 0:
            group_nodes[group, node] = True
    return assignment
