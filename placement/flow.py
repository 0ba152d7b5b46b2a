r"""Exact placement without anti-affinity, for every strategy: a min-cost flow over device types.

The network:

    source → (request class, priority) group, capacity = its requests
      → device type (feasible for the class), cost :math:`-(U w + s(\text{class}, t))`
      → its node, capacity = the type's devices
      → sink through one arc per slot :math:`j`, capacity 1, cost :math:`-\nu_n(j)`,
    plus source → sink (unplaced requests) at cost 0.

Slot costs never decrease with :math:`j` (``placement.strategies``), so an optimal flow fills
a node's slots in order and its cost is exactly minus ``objective.evaluate`` of the plan it
describes: without anti-affinity this *is* the optimum, node-count terms included, which the
linear sum assignment cannot express. Anti-affinity only removes plans, so with it the same
value is a proven upper bound. Requests aggregate by ask and priority and devices by type,
so the network stays small: 185 thousand arcs and 0.2 s at 5,000 requests × 20,000 devices
(the benchmark's fleets), where a linear sum assignment over devices needs 15 million.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.graph.python.min_cost_flow import SimpleMinCostFlow

from placement.arrays import IndexArray, IntArray
from placement.compiled import CompiledProblem
from placement.objective import UNPLACED, weight_unit
from placement.strategies import ScoreModel


class FlowFailed(RuntimeError):
    """The min-cost flow did not reach an optimum (a cost range it cannot scale)."""


@dataclass(frozen=True, eq=False)
class FlowResult:
    """The optimum without anti-affinity.

    Attributes:
        assignment: device row per request (it may break anti-affinity).
        objective: its objective, which bounds every plan of the problem.
    """

    assignment: IndexArray
    objective: int


@dataclass(frozen=True, eq=False)
class _Network:
    tails: IntArray
    heads: IntArray
    capacities: IntArray
    costs: IntArray
    group_rows: tuple[IndexArray, ...]  # request rows of each group
    group_arcs: tuple[tuple[int, IndexArray], ...]  # (first arc, types) per group


def solve_flow(compiled: CompiledProblem, model: ScoreModel) -> FlowResult:
    """The best plan ignoring anti-affinity, and its objective.

    Raises:
        FlowFailed: the flow solver reported anything but an optimum.
    """
    assignment = np.full(compiled.num_requests, UNPLACED, dtype=np.intp)
    network = _network(compiled, model)
    if network is None:
        return FlowResult(assignment, 0)
    flow = SimpleMinCostFlow()
    arcs = flow.add_arcs_with_capacity_and_unit_cost(
        network.tails.astype(np.int32),
        network.heads.astype(np.int32),
        network.capacities,
        network.costs,
    )
    flow.set_node_supply(0, compiled.num_requests)
    flow.set_node_supply(1, -compiled.num_requests)
    status = flow.solve()
    if status != SimpleMinCostFlow.OPTIMAL:
        raise FlowFailed(f"min-cost flow ended with {status}")
    flows = np.asarray(flow.flows(np.asarray(arcs, dtype=np.int32)), dtype=np.int64)
    cursor = np.zeros(compiled.num_types, dtype=np.int64)
    for rows, (first, types) in zip(network.group_rows, network.group_arcs, strict=True):
        taken = flows[first : first + len(types)]
        chosen_types = np.repeat(types, taken)
        for row, t in zip(rows[: len(chosen_types)].tolist(), chosen_types.tolist(), strict=True):
            assignment[row] = compiled.type_devices[t][cursor[t]]
            cursor[t] += 1
    return FlowResult(assignment, -int(flow.optimal_cost()))


def anti_affinity_conflicts(compiled: CompiledProblem, assignment: IndexArray) -> IndexArray:
    """Rows to unplace so no two requests of a group share a node: on each (group, node) the
    highest priority (then earliest) request stays."""
    rows = np.flatnonzero((assignment >= 0) & (compiled.request_group >= 0))
    if len(rows) == 0:
        return rows
    key = compiled.request_group[rows].astype(np.int64) * compiled.fleet.num_nodes
    key = key + compiled.fleet.device_node[assignment[rows]]
    order = np.lexsort((rows, -compiled.request_weight[rows], key))
    repeated = np.r_[False, key[order][1:] == key[order][:-1]]
    return np.sort(rows[order][repeated]).astype(np.intp)


def relaxation_bound(compiled: CompiledProblem, model: ScoreModel) -> int:
    """The optimal objective without anti-affinity: an upper bound on every plan."""
    return solve_flow(compiled, model).objective


def _network(compiled: CompiledProblem, model: ScoreModel) -> _Network | None:
    n_requests = compiled.num_requests
    unit = weight_unit(n_requests)
    representative = compiled.type_representative
    groups: list[tuple[int, int, IndexArray]] = []  # (class, weight, rows)
    for index, c in enumerate(compiled.classes):
        if len(c.feasible_types) == 0:
            continue
        weights = compiled.request_weight[c.members]
        for weight in np.unique(weights).tolist():
            groups.append((index, weight, c.members[weights == weight]))
    if not groups:
        return None

    n_groups, n_types, n_nodes = len(groups), compiled.num_types, compiled.fleet.num_nodes
    source, sink = 0, 1
    group_id = 2 + np.arange(n_groups)
    type_id = 2 + n_groups + np.arange(n_types)
    node_id = 2 + n_groups + n_types + np.arange(n_nodes)
    sizes = np.asarray([len(rows) for _, _, rows in groups], dtype=np.int64)
    tails: list[IntArray] = [np.zeros(n_groups, dtype=np.int64), np.asarray([source])]
    heads: list[IntArray] = [group_id, np.asarray([sink])]
    capacities: list[IntArray] = [sizes, np.asarray([n_requests])]
    costs: list[IntArray] = [np.zeros(n_groups, dtype=np.int64), np.zeros(1, dtype=np.int64)]
    group_arcs: list[tuple[int, IndexArray]] = []
    arc = n_groups + 1
    for k, (index, weight, rows) in enumerate(groups):
        c = compiled.classes[index]
        types = c.feasible_types
        minimum = compiled.request_minimum[c.representative]
        score = model.edge_scores(minimum, representative[types])
        tails.append(np.full(len(types), group_id[k]))
        heads.append(type_id[types])
        capacities.append(np.minimum(compiled.type_count[types], len(rows)))
        costs.append(-(weight * unit + score))
        group_arcs.append((arc, types))
        arc += len(types)
    tails.append(type_id)
    heads.append(node_id[compiled.type_node])
    capacities.append(compiled.type_count)
    costs.append(np.zeros(n_types, dtype=np.int64))
    on_node = np.bincount(compiled.type_node, weights=compiled.type_count, minlength=n_nodes)
    slots = np.minimum(on_node, n_requests).astype(np.int64)
    nodes = np.repeat(np.arange(n_nodes), slots)
    first = np.cumsum(slots) - slots
    slot = np.arange(len(nodes)) - np.repeat(first, slots) + 1
    tails.append(node_id[nodes])
    heads.append(np.full(len(nodes), sink))
    capacities.append(np.ones(len(nodes), dtype=np.int64))
    costs.append(-model.node_reward(nodes, slot))
    return _Network(
        np.concatenate(tails).astype(np.int64),
        np.concatenate(heads).astype(np.int64),
        np.concatenate(capacities).astype(np.int64),
        np.concatenate(costs).astype(np.int64),
        tuple(rows for _, _, rows in groups),
        tuple(group_arcs),
    )
