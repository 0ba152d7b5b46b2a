r"""The CP-SAT model: priority-weighted matching with anti-affinity and node-count terms.

Variables: a boolean :math:`x_e` per candidate pair :math:`e = (r, t)` of a request and a
device type (``compiled``: interchangeable devices, :math:`c_t` of them); for each node whose
node term changes with the plan's count (spread, balanced, least_loaded) a boolean
:math:`y_{n,j}` per slot :math:`j` ("at least :math:`j` placements on :math:`n`").

Constraints (one function each below):

* each request takes at most one device: :math:`\sum_t x_{rt} \le 1`;
* a type has :math:`c_t` free devices, each leased whole: :math:`\sum_r x_{rt} \le c_t`;
* anti-affinity: for a group :math:`g` and a node :math:`n`,
  :math:`\sum_{r \in g, t \in n} x_{rt} \le 1`;
* slots: :math:`\sum_j y_{n,j} \le \sum_{e \in n} x_e` and :math:`y_{n,j+1} \Rightarrow
  y_{n,j}`.

Objective (maximize): :math:`\sum_e (U w_r + s_e + \beta_n) x_e + \sum_{n,j} (\nu_n(j) -
\beta_n) y_{n,j}` with :math:`\beta_n = \nu_n(J_n)` the node term of the node's last
possible slot :math:`J_n`, so slot coefficients are non-negative and nonincreasing in
:math:`j`; slots with coefficient 0 are left out. At an optimum the :math:`y` are tight and
this is exactly ``objective.evaluate``.

A model may cover a *window* of requests only (``placement.windows``): the others stay where
they are (:class:`Frame`), so :math:`c_t` counts the devices they leave, slots start after
their placements on each node, and nodes holding a fixed member of a group are closed to the
group. A known upper bound (the flow's) becomes the objective's domain, so CP-SAT stops as
soon as it reaches it.

The model is written straight into the proto from numpy arrays (about a microsecond per
pair) and warm-started with the current plan, a complete hint. Presolve is off: on these
models it costs more than it saves within a 0.1–2 s budget, and one search worker beats two
on two cores (measured in ``bench/placement.py``'s development).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from placement.arrays import IndexArray, IntArray
from placement.candidates import Edges, merge_edges
from placement.compiled import CompiledProblem
from placement.objective import UNPLACED, evaluate, weight_unit
from placement.strategies import ScoreModel

#: Below this much time left, CP-SAT is not worth starting.
MIN_SOLVE_SECONDS = 0.002


@dataclass(frozen=True, eq=False)
class CpSatResult:
    """What CP-SAT returned.

    Attributes:
        assignment: device row per request, ``None`` when it found no solution in time.
        status: CP-SAT's status name (``OPTIMAL``, ``FEASIBLE``, ``UNKNOWN``, or ``NOT_RUN``
            when the build left no time).
        best_bound: the upper bound it proved over the candidate pairs it was given.
        wall_seconds: CP-SAT's own wall time.
        build_seconds: time to build the model.
    """

    assignment: IndexArray | None
    status: str
    best_bound: int | None
    wall_seconds: float
    build_seconds: float


@dataclass(frozen=True, eq=False)
class _Slots:
    """The slot variables: ``node`` and 1-based ``slot`` of each, and its coefficient."""

    node: IndexArray
    slot: IntArray
    coefficient: IntArray
    base: IntArray  # (N,) β_n, added to every pair on node n


@dataclass(frozen=True, eq=False)
class Frame:
    """What the requests outside the window fix for the ones inside.

    Attributes:
        window: rows of the requests to (re)place, ascending.
        fixed: the current assignment with the window's requests unplaced.
        capacity: ``(T,)`` devices of each type not held by a fixed request.
        offset: ``(N,)`` fixed placements per node (the window's slots come after them).
        blocked: sorted ``group * N + node`` keys of nodes holding a fixed member of a group.
        constant: the objective of the fixed placements alone.
    """

    window: IndexArray
    fixed: IndexArray
    capacity: IntArray
    offset: IntArray
    blocked: IntArray
    constant: int


def frame(
    compiled: CompiledProblem,
    model: ScoreModel,
    current: IndexArray,
    window: IndexArray | None = None,
) -> Frame:
    """Fix every request of ``current`` outside ``window`` (all requests when ``None``)."""
    n_requests = compiled.num_requests
    rows = np.arange(n_requests, dtype=np.intp) if window is None else np.unique(window)
    fixed = current.astype(np.intp, copy=True)
    fixed[rows] = UNPLACED
    held = fixed[fixed >= 0]
    capacity = compiled.type_count - np.bincount(
        compiled.device_type[held], minlength=compiled.num_types
    ).astype(np.int64)
    fleet = compiled.fleet
    offset = np.bincount(fleet.device_node[held], minlength=fleet.num_nodes).astype(np.int64)
    grouped = np.flatnonzero((fixed >= 0) & (compiled.request_group >= 0))
    blocked = np.unique(
        compiled.request_group[grouped].astype(np.int64) * fleet.num_nodes
        + fleet.device_node[fixed[grouped]]
    )
    constant = evaluate(compiled, model, fixed).objective
    return Frame(rows, fixed, capacity, offset, blocked, constant)


def solve_cpsat(
    compiled: CompiledProblem,
    model: ScoreModel,
    edges: Edges,
    current: IndexArray,
    *,
    deadline: float,
    num_workers: int,
    random_seed: int,
    window: IndexArray | None = None,
    upper_bound: int | None = None,
) -> CpSatResult:
    """Re-place the ``window``'s requests (all when ``None``) over (request, type) ``edges``,
    the others staying where ``current`` has them; hinted with ``current``, solved until
    ``deadline``.

    Args:
        compiled: the problem.
        model: the strategy's scores.
        edges: candidate (request, device type) pairs; pairs outside the window, on types
            the fixed requests use up, or on nodes their anti-affinity groups hold are
            dropped, and each window request's current pair is added.
        current: device row per request (the greedy plan, or the best plan so far).
        deadline: ``time.perf_counter()`` value by which CP-SAT must have answered.
        num_workers: CP-SAT's search workers.
        random_seed: CP-SAT's seed.
        window: request rows to re-place.
        upper_bound: a proven bound on the whole objective (``flow.relaxation_bound``); CP-SAT
            stops as soon as it reaches it.

    Returns:
        The result; its assignment covers every request and its bound the whole objective
        (over ``edges``).
    """
    started = time.perf_counter()
    context = frame(compiled, model, current, window)
    edges = _admissible(compiled, edges, context, current)
    cp = cp_model.CpModel()
    slots = _slots(compiled, model, edges, context)
    n_variables = len(edges) + len(slots.node)
    if n_variables:
        cp.proto.parse_text_format("variables { domain: [0, 1] }\n" * n_variables)
    add_one_device_per_request(cp, edges)
    add_type_capacity(cp, edges, context.capacity)
    add_anti_affinity(cp, compiled, edges)
    add_slot_counts(cp, compiled, edges, slots)
    _set_objective(cp, compiled, model, edges, slots)
    if upper_bound is not None:
        # CP-SAT minimizes the negated objective: it cannot go below -(bound - fixed part).
        cp.proto.objective.domain.extend([-(upper_bound - context.constant), 0])
    _set_hint(cp, compiled, edges, slots, current, context)
    built = time.perf_counter()
    build_seconds = built - started
    if deadline - built <= MIN_SOLVE_SECONDS:
        return CpSatResult(None, "NOT_RUN", None, 0.0, build_seconds)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = deadline - built
    solver.parameters.num_workers = num_workers
    solver.parameters.random_seed = random_seed
    solver.parameters.cp_model_presolve = False
    status = solver.solve(cp)
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return CpSatResult(None, name, None, solver.wall_time, build_seconds)
    solution = solver.response_proto.solution
    values = np.fromiter(solution, dtype=np.int64, count=len(solution))[: len(edges)]
    bound = solver.best_objective_bound
    best_bound = math.floor(bound + 1e-6) + context.constant if math.isfinite(bound) else None
    assignment = _devices(compiled, edges, np.flatnonzero(values), current, context)
    return CpSatResult(assignment, name, best_bound, solver.wall_time, build_seconds)


def add_one_device_per_request(cp: cp_model.CpModel, edges: Edges) -> None:
    r"""Each request takes at most one device: :math:`\sum_t x_{rt} \le 1`."""
    for literals in _runs(edges.request, np.arange(len(edges))):
        _at_most_one(cp, literals)


def add_type_capacity(cp: cp_model.CpModel, edges: Edges, capacity: IntArray) -> None:
    r"""A type's devices are leased whole, one request each: :math:`\sum_r x_{rt} \le c_t`
    (``capacity``: the type's devices not held by fixed requests)."""
    order = np.argsort(edges.target, kind="stable")
    sorted_types = edges.target[order]
    for t, literals in zip(_run_keys(sorted_types), _runs(sorted_types, order), strict=True):
        count = int(capacity[t])
        if count == 1:
            _at_most_one(cp, literals)
        elif len(literals) > count:
            linear = cp.proto.constraints.add().linear
            linear.vars.extend(literals.tolist())
            linear.coeffs.extend([1] * len(literals))
            linear.domain.extend([0, count])


def add_anti_affinity(cp: cp_model.CpModel, compiled: CompiledProblem, edges: Edges) -> None:
    r"""Requests of one group land on distinct nodes: :math:`\sum_{r \in g, t \in n} x_{rt}
    \le 1` for every group :math:`g` and node :math:`n`."""
    group = compiled.request_group[edges.request]
    grouped = np.flatnonzero(group >= 0)
    if len(grouped) == 0:
        return
    nodes = compiled.type_node[edges.target[grouped]]
    key = group[grouped] * compiled.fleet.num_nodes + nodes
    order = np.argsort(key, kind="stable")
    for literals in _runs(key[order], grouped[order]):
        if len(np.unique(edges.request[literals])) > 1:
            _at_most_one(cp, literals)


def add_slot_counts(
    cp: cp_model.CpModel, compiled: CompiledProblem, edges: Edges, slots: _Slots
) -> None:
    r"""Slot :math:`j` of node :math:`n` is on only if :math:`j` pairs on :math:`n` are:
    :math:`\sum_j y_{n,j} \le \sum_{e \in n} x_e` and :math:`y_{n,j+1} \Rightarrow y_{n,j}`."""
    if len(slots.node) == 0:
        return
    proto = cp.proto
    pair_node = compiled.type_node[edges.target]
    order = np.argsort(pair_node, kind="stable")
    pair_runs = dict(zip(_run_keys(pair_node[order]), _runs(pair_node[order], order), strict=True))
    slot_ids = len(edges) + np.arange(len(slots.node))
    for node, members in zip(_run_keys(slots.node), _runs(slots.node, slot_ids), strict=True):
        pairs = pair_runs[node]
        linear = proto.constraints.add().linear
        linear.vars.extend(members.tolist() + pairs.tolist())
        linear.coeffs.extend([1] * len(members) + [-1] * len(pairs))
        linear.domain.extend([-len(pairs), 0])
        for earlier, later in zip(members[:-1].tolist(), members[1:].tolist(), strict=True):
            implication = proto.constraints.add()
            implication.enforcement_literal.append(later)
            implication.bool_and.literals.append(earlier)


def _slots(compiled: CompiledProblem, model: ScoreModel, edges: Edges, context: Frame) -> _Slots:
    """Slot variables of the nodes whose node term varies over the window's possible counts
    (slot ``j`` of node ``n`` scores as placement ``offset[n] + j`` of the plan there)."""
    n_nodes = compiled.fleet.num_nodes
    n_requests = max(compiled.num_requests, 1)
    types = np.unique(edges.target)
    devices_on = np.bincount(
        compiled.type_node[types], weights=context.capacity[types], minlength=n_nodes
    ).astype(np.int64)
    pair_node = compiled.type_node[edges.target].astype(np.int64)
    node_request = np.unique(pair_node * n_requests + edges.request)
    requests_on = np.bincount(node_request // n_requests, minlength=n_nodes)
    capacity = np.minimum(devices_on, requests_on).astype(np.int64)
    all_nodes = np.arange(n_nodes)
    last = context.offset + np.maximum(capacity, 1)
    base = np.where(capacity > 0, model.node_reward(all_nodes, last), 0)
    nodes = np.repeat(all_nodes, capacity)
    first = np.cumsum(capacity) - capacity
    slot = np.arange(len(nodes)) - np.repeat(first, capacity) + 1
    coefficient = model.node_reward(nodes, context.offset[nodes] + slot) - base[nodes]
    keep = coefficient > 0
    return _Slots(
        nodes[keep], slot[keep].astype(np.int64), coefficient[keep], base.astype(np.int64)
    )


def _admissible(
    compiled: CompiledProblem, edges: Edges, context: Frame, current: IndexArray
) -> Edges:
    """The pairs the window may use, plus each window request's current pair."""
    fleet = compiled.fleet
    in_window = np.zeros(compiled.num_requests, dtype=np.bool_)
    in_window[context.window] = True
    keep = in_window[edges.request] & (context.capacity[edges.target] > 0)
    group = compiled.request_group[edges.request]
    grouped = keep & (group >= 0)
    if len(context.blocked) and grouped.any():
        key = (
            group[grouped].astype(np.int64) * fleet.num_nodes
            + compiled.type_node[edges.target[grouped]]
        )
        keep[np.flatnonzero(grouped)[np.isin(key, context.blocked)]] = False
    placed = context.window[current[context.window] >= 0]
    return merge_edges(
        compiled.num_types,
        [edges.request[keep], placed],
        [edges.target[keep], compiled.device_type[current[placed]]],
        complete=edges.complete and window_is_all(compiled, context),
    )


def window_is_all(compiled: CompiledProblem, context: Frame) -> bool:
    """The window holds every request (nothing is fixed)."""
    return len(context.window) == compiled.num_requests


def _set_objective(
    cp: cp_model.CpModel,
    compiled: CompiledProblem,
    model: ScoreModel,
    edges: Edges,
    slots: _Slots,
) -> None:
    unit = weight_unit(compiled.num_requests)
    devices = compiled.type_representative[edges.target]
    gain = compiled.request_weight[edges.request] * unit
    gain = gain + model.edge_scores(compiled.request_minimum[edges.request], devices)
    gain = gain + slots.base[compiled.type_node[edges.target]]
    coefficients = np.concatenate([gain, slots.coefficient]).astype(np.int64)
    objective = cp.proto.objective
    objective.vars.extend(range(len(coefficients)))
    objective.coeffs.extend((-coefficients).tolist())
    objective.scaling_factor = -1.0  # CP-SAT minimizes; this reports the maximized value


def _set_hint(
    cp: cp_model.CpModel,
    compiled: CompiledProblem,
    edges: Edges,
    slots: _Slots,
    current: IndexArray,
    context: Frame,
) -> None:
    hinted_type = np.where(current >= 0, compiled.device_type[current], -1)
    chosen = hinted_type[edges.request] == edges.target
    placed = context.window[current[context.window] >= 0]
    counts = np.bincount(
        compiled.fleet.device_node[current[placed]], minlength=compiled.fleet.num_nodes
    )
    slot_on = slots.slot <= counts[slots.node]
    values = np.concatenate([chosen, slot_on]).astype(np.int64)
    hint_proto = cp.proto.solution_hint
    hint_proto.vars.extend(range(len(values)))
    hint_proto.values.extend(values.tolist())


def _devices(
    compiled: CompiledProblem,
    edges: Edges,
    chosen: IndexArray,
    current: IndexArray,
    context: Frame,
) -> IndexArray:
    """The full assignment: fixed requests as they were, window requests on devices of their
    chosen types (their current device when they stay on its type, else the type's devices
    nobody holds, in order)."""
    assignment = context.fixed.copy()
    requests, types = edges.request[chosen], edges.target[chosen]
    previous = current[requests]
    stays = (previous >= 0) & (compiled.device_type[np.maximum(previous, 0)] == types)
    assignment[requests[stays]] = previous[stays]
    used = set(assignment[assignment >= 0].tolist())
    cursor: dict[int, int] = {}
    for request, t in zip(requests[~stays].tolist(), types[~stays].tolist(), strict=True):
        devices = compiled.type_devices[t]
        position = cursor.get(t, 0)
        while int(devices[position]) in used:
            position += 1
        assignment[request] = devices[position]
        cursor[t] = position + 1
    return assignment


def _at_most_one(cp: cp_model.CpModel, literals: IndexArray) -> None:
    if len(literals) > 1:
        cp.proto.constraints.add().at_most_one.literals.extend(literals.tolist())


def _run_keys(sorted_keys: IndexArray) -> list[int]:
    """The distinct values of a sorted array, in order."""
    if len(sorted_keys) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    return [int(k) for k in sorted_keys[starts]]


def _runs(sorted_keys: IndexArray, values: IndexArray) -> list[IndexArray]:
    """``values`` split where the sorted ``sorted_keys`` change."""
    if len(sorted_keys) == 0:
        return []
    cuts = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    return np.split(values, cuts)
