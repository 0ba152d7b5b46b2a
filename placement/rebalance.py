r"""Rebalance: which running leases to move, at most ``max_moves`` of them, so that the fleet
scores best under a strategy (spread the load, pack it to free whole nodes, balance
resources).

The leases to consider are the problem's requests, ``current`` maps each to the device it
holds. Those devices are freed in the problem (their leases are what is placed), every other
leased device stays as load. A lease may stay on its device or move to a *free* device of the
same size (the caller's requests carry the rest of the rule: Android version and labels);
a device a move vacates is reset before anyone else may have it, so no move lands on it.

The objective is ``placement.objective``'s score (the same the allocator maximizes) plus
:data:`STAY_BONUS` per lease that stays, so a move must earn more than it disturbs. One
difference: the allocator's binpack scores a node by its load *before* the plan, which is
nothing here once the leases are freed; a rebalance scores it by its utilisation *after* the
lease lands (:func:`packing_model`), so filling busy nodes and emptying idle ones gains.
Variables (CP-SAT): a boolean :math:`x_{rt}` per lease and device type it may take (its own
type meaning "stays"), and slot booleans :math:`y_{n,j}` for the node term, as in
``placement.cpsat``; only the slots a budget of :math:`M` moves can reach are modelled
(counts move by at most :math:`M` on a node). Constraints: each lease exactly one type;
leases arriving on a type at most its free devices; at most :math:`M` leases off their type.

A greedy plan (best single move at a time, while one gains) is the hint and the floor: the
answer is the better of the two, and the bench compares them.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from placement.arrays import IndexArray, IntArray
from placement.candidates import Edges, all_type_edges, diversified_type_edges, merge_edges
from placement.compiled import CompiledProblem, compile_problem
from placement.objective import evaluate, node_counts
from placement.plan import SolverParams
from placement.problem import DEVICE_AVAILABLE, InvalidProblem, PlacementProblem, Strategy
from placement.strategies import ScoreModel, score_model

#: Points a lease earns by staying: a move must gain more than this to be worth planning.
STAY_BONUS = 5
#: Up to this many (lease, device type) pairs the model gets every pair; above, a diverse few.
ALL_PAIRS_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class Move:
    """One lease moved from its device to another.

    Attributes:
        gain: what the move adds to the objective when the plan's moves run in order.
        terms: that gain split by score term (``fit``, ``balance``, the strategy's node
            term), so a reason can name what it improves.
        from_leased, to_leased: leases on the source and target node before the move
            (the plan's earlier moves counted), out of ``from_devices`` and ``to_devices``.
    """

    request: Hashable
    from_device: Hashable
    to_device: Hashable
    from_node: Hashable
    to_node: Hashable
    gain: int
    terms: tuple[tuple[str, int], ...]
    from_leased: int
    from_devices: int
    to_leased: int
    to_devices: int


@dataclass(frozen=True, slots=True)
class FleetShape:
    """How the leases sit on the ready nodes: nodes holding any, and the spread of their
    utilisation (standard deviation of leased/devices over the ready nodes with devices)."""

    nodes_in_use: int
    utilisation_spread: float


@dataclass(frozen=True, slots=True)
class RebalancePlan:
    """The moves, in the order to run them, and the objective before and after them."""

    moves: tuple[Move, ...]
    objective_before: int
    objective_after: int
    shape_before: FleetShape
    shape_after: FleetShape
    solver: str
    status: str
    greedy_objective: int
    solve_seconds: float


def plan_rebalance(
    problem: PlacementProblem,
    current: Mapping[Any, Any],
    params: SolverParams,
    max_moves: int,
    *,
    use_cp_sat: bool = True,
) -> RebalancePlan:
    """Plan at most ``max_moves`` moves of the problem's requests (running leases) off the
    devices ``current`` gives them, maximizing the strategy's score.

    Raises:
        InvalidProblem: a request without a current device, or one on an unknown device.
    """
    started = time.perf_counter()
    compiled, start = _compile(problem, current)
    model = packing_model(score_model(compiled.fleet, params.strategy, params.weights))
    edges = _edges(compiled, model, start, params)
    frame = _Frame.of(compiled, model, edges, start)
    greedy = _greedy(frame, max_moves)
    best, solver, status = greedy, "greedy", "GREEDY"
    if use_cp_sat and max_moves > 0 and len(frame.edges):
        deadline = started + params.max_time_seconds
        solved, status = _solve_cp_sat(frame, greedy, max_moves, deadline, params)
        if solved is not None and frame.net(solved) > frame.net(greedy):
            best, solver = solved, "cp-sat"
    moves = _ordered_moves(frame, best)
    before = evaluate(compiled, model, start).objective
    return RebalancePlan(
        moves=moves,
        objective_before=before,
        objective_after=before + sum(m.gain for m in moves),
        shape_before=_shape(compiled, start),
        shape_after=_shape(compiled, frame.assignment(best)),
        solver=solver,
        status=status,
        greedy_objective=evaluate(compiled, model, frame.assignment(greedy)).objective,
        solve_seconds=time.perf_counter() - started,
    )


def packing_model(model: ScoreModel) -> ScoreModel:
    r"""Binpack for moves: the :math:`j`-th lease on node :math:`n` scores the node's
    utilisation with it, :math:`u_n + j \hat s_n` (:math:`\hat s_n` its mean device's share);
    other strategies as they are. Rewards growing with :math:`j` make the node term convex, so
    it packs; the slot model stays exact (its slots are a prefix whatever their rewards)."""
    if model.strategy is not Strategy.BINPACK:
        return model
    fleet = model.fleet
    share = np.zeros_like(fleet.node_mean_device)
    np.divide(fleet.node_mean_device, fleet.node_capacity, out=share, where=fleet.node_capacity > 0)
    step = share.mean(axis=1)
    return replace(model, node_a=model.node_a + step, node_b=-step)


def _compile(
    problem: PlacementProblem, current: Mapping[Any, Any]
) -> tuple[CompiledProblem, IndexArray]:
    """The problem with the leases' devices freed, and each lease's device row."""
    held = set(current.values())
    if len(held) != len(current):
        raise InvalidProblem("two leases hold one device")
    missing = [r.id for r in problem.requests if r.id not in current]
    if missing:
        raise InvalidProblem(f"request {missing[0]!r} holds no device")
    freed = replace(
        problem,
        devices=tuple(
            replace(d, state=DEVICE_AVAILABLE) if d.id in held else d for d in problem.devices
        ),
    )
    compiled = compile_problem(freed)
    row = {device_id: i for i, device_id in enumerate(compiled.fleet.device_ids)}
    unknown = held - row.keys()
    if unknown:
        raise InvalidProblem(f"device {next(iter(unknown))!r} is not in the problem")
    start = np.asarray([row[current[r.id]] for r in problem.requests], dtype=np.intp)
    if (compiled.device_type[start] < 0).any():
        raise InvalidProblem("a lease's device is on a node that is not ready")
    return compiled, start


def _edges(
    compiled: CompiledProblem, model: ScoreModel, start: IndexArray, params: SolverParams
) -> Edges:
    """(lease, device type) pairs of the lease's own size, and each lease's own type."""
    if compiled.feasible_type_pair_count() <= ALL_PAIRS_LIMIT:
        pool = all_type_edges(compiled)
    else:
        pool = diversified_type_edges(
            compiled, model, start, params.candidates_per_request, params.random_seed
        )
    capacity = compiled.fleet.device_capacity
    same_size = np.all(
        capacity[compiled.type_representative[pool.target]] == capacity[start[pool.request]],
        axis=1,
    )
    own = compiled.device_type[start]
    return merge_edges(
        compiled.num_types,
        [pool.request[same_size], np.arange(len(start), dtype=np.intp)],
        [pool.target[same_size], own],
        complete=pool.complete,
    )


@dataclass(frozen=True, eq=False)
class _Frame:
    """The arrays both solvers share. A *choice* is one edge index per lease."""

    compiled: CompiledProblem
    model: ScoreModel
    edges: Edges
    start: IndexArray  # (R,) device row each lease holds
    own: IndexArray  # (R,) its device type
    stays: IntArray  # (R,) the edge index of staying
    score: IntArray  # (E,) edge score of the pair (its device-dependent terms)
    node: IndexArray  # (E,) node of the pair's type
    free: IntArray  # (T,) devices of the type nobody holds

    @classmethod
    def of(
        cls, compiled: CompiledProblem, model: ScoreModel, edges: Edges, start: IndexArray
    ) -> _Frame:
        own = compiled.device_type[start]
        stay_mask = edges.target == own[edges.request]
        stays = np.zeros(len(start), dtype=np.int64)
        stays[edges.request[stay_mask]] = np.flatnonzero(stay_mask)
        devices = compiled.type_representative[edges.target]
        score = model.edge_scores(compiled.request_minimum[edges.request], devices)
        held = np.bincount(own, minlength=compiled.num_types)
        return cls(
            compiled,
            model,
            edges,
            start,
            own,
            stays,
            score.astype(np.int64),
            compiled.type_node[edges.target],
            compiled.type_count - held,
        )

    def counts(self, choice: IntArray) -> IntArray:
        """Leases per node under ``choice``."""
        return np.bincount(self.node[choice], minlength=self.compiled.fleet.num_nodes)

    def net(self, choice: IntArray) -> int:
        """The objective plus the bonus of the leases that stay."""
        staying = int((choice == self.stays).sum())
        node_term = self.model.node_total(self.counts(choice))
        return int(self.score[choice].sum()) + node_term + STAY_BONUS * staying

    def assignment(self, choice: IntArray) -> IndexArray:
        """Device row per lease: its own when it stays, else free devices of its new type."""
        compiled = self.compiled
        assignment = self.start.copy()
        taken = set(self.start.tolist())
        for lease in np.flatnonzero(choice != self.stays).tolist():
            t = int(self.edges.target[choice[lease]])
            device = next(int(d) for d in compiled.type_devices[t] if int(d) not in taken)
            taken.add(device)
            assignment[lease] = device
        return assignment


def _greedy(frame: _Frame, max_moves: int) -> IntArray:
    """Moves one at a time, each the best single move left, while one gains more than it
    costs; a lease moves at most once."""
    choice = frame.stays.copy()
    counts = frame.counts(choice)
    free = frame.free.copy()
    movable = np.ones(len(choice), dtype=np.bool_)
    edges, model = frame.edges, frame.model
    for _ in range(max_moves):
        open_edges = movable[edges.request] & (free[edges.target] > 0)
        open_edges &= edges.target != frame.own[edges.request]
        candidates = np.flatnonzero(open_edges)
        if len(candidates) == 0:
            break
        leases = edges.request[candidates]
        gain = _move_gain(frame, counts, choice[leases], candidates, model) - STAY_BONUS
        best = int(np.argmax(gain))
        if gain[best] <= 0:
            break
        edge, lease = int(candidates[best]), int(leases[best])
        counts[frame.node[choice[lease]]] -= 1
        counts[frame.node[edge]] += 1
        free[edges.target[edge]] -= 1
        choice[lease] = edge
        movable[lease] = False
    return choice


def _move_gain(
    frame: _Frame, counts: IntArray, old: IntArray, new: IntArray, model: ScoreModel
) -> IntArray:
    """What moving each lease from pair ``old`` to pair ``new`` adds, given ``counts``."""
    old_node, new_node = frame.node[old], frame.node[new]
    moved = old_node != new_node
    node_delta = model.node_reward(new_node, counts[new_node] + 1) - model.node_reward(
        old_node, counts[old_node]
    )
    return frame.score[new] - frame.score[old] + np.where(moved, node_delta, 0)


def _solve_cp_sat(
    frame: _Frame, hint: IntArray, max_moves: int, deadline: float, params: SolverParams
) -> tuple[IntArray | None, str]:
    edges, model = frame.edges, frame.model
    n_edges, n_nodes = len(edges), frame.compiled.fleet.num_nodes
    cp = cp_model.CpModel()
    x = [cp.new_bool_var("") for _ in range(n_edges)]
    moving = edges.target != frame.own[edges.request]
    for lease_edges in np.split(np.arange(n_edges), np.flatnonzero(np.diff(edges.request)) + 1):
        cp.add_exactly_one(x[e] for e in lease_edges.tolist())
    arriving = np.flatnonzero(moving)
    by_type = arriving[np.argsort(edges.target[arriving], kind="stable")]
    for group in np.split(by_type, np.flatnonzero(np.diff(edges.target[by_type])) + 1):
        if len(group) and len(group) > frame.free[edges.target[group[0]]]:
            cp.add(sum(x[e] for e in group.tolist()) <= int(frame.free[edges.target[group[0]]]))
    cp.add(sum(x[e] for e in arriving.tolist()) <= max_moves)
    terms: list[tuple[cp_model.IntVar, int]] = [
        (x[e], int(frame.score[e]) + STAY_BONUS * (not moving[e])) for e in range(n_edges)
    ]
    if not model.separable:
        terms += _slot_terms(cp, frame, x, max_moves, frame.counts(hint))
    else:
        reward = model.node_reward(np.arange(n_nodes), 1)
        terms = [(v, c + int(reward[frame.node[e]])) for e, (v, c) in enumerate(terms)]
    cp.maximize(sum(c * v for v, c in terms if c))
    for e in range(n_edges):
        cp.add_hint(x[e], bool(hint[edges.request[e]] == e))
    left = deadline - time.perf_counter()
    if left <= 0.01:
        return None, "NOT_RUN"
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = left
    solver.parameters.num_workers = params.num_workers
    solver.parameters.random_seed = params.random_seed
    solver.parameters.cp_model_presolve = False  # proves spread plans in ~1 s; 5 s without
    status = solver.solve(cp)
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, name
    chosen = np.asarray([solver.boolean_value(v) for v in x], dtype=np.bool_)
    choice = np.zeros(len(frame.start), dtype=np.int64)
    choice[edges.request[chosen]] = np.flatnonzero(chosen)
    return choice, name


def _slot_terms(
    cp: cp_model.CpModel,
    frame: _Frame,
    x: list[cp_model.IntVar],
    max_moves: int,
    hinted: IntArray,
) -> list[tuple[cp_model.IntVar, int]]:
    r"""The node term: slot :math:`y_{n,j}` ("at least :math:`j` leases on :math:`n`") for the
    counts a budget of ``max_moves`` can reach; the slots below them are always on and add a
    constant, which the objective may leave out. Hinted on up to the ``hinted`` counts."""
    model = frame.model
    now = frame.counts(frame.stays)
    reach = np.bincount(frame.node, minlength=len(now))  # pairs on the node: a count bound
    by_node = np.argsort(frame.node, kind="stable")
    pairs_of = np.split(by_node, np.cumsum(reach)[:-1])  # each node's pairs, in one pass
    terms: list[tuple[cp_model.IntVar, int]] = []
    for n in np.flatnonzero(reach).tolist():
        low = max(int(now[n]) - max_moves, 0)
        high = min(int(now[n]) + max_moves, int(reach[n]))
        if high <= low:
            continue
        rewards = model.node_reward(np.full(high - low, n), np.arange(low + 1, high + 1))
        slots = [cp.new_bool_var("") for _ in range(high - low)]
        cp.add(sum(slots) <= sum(x[e] for e in pairs_of[n].tolist()) - low)
        for earlier, later in itertools.pairwise(slots):
            cp.add_implication(later, earlier)
        for j, slot in enumerate(slots, start=low + 1):
            cp.add_hint(slot, j <= int(hinted[n]))
        terms += [(s, int(r)) for s, r in zip(slots, rewards.tolist(), strict=True)]
    return terms


def _ordered_moves(frame: _Frame, choice: IntArray) -> tuple[Move, ...]:
    """The moves of ``choice``, best first (each the best left given the ones before), with
    their gains and terms."""
    compiled, model = frame.compiled, frame.model
    fleet = compiled.fleet
    assignment = frame.assignment(choice)
    left = np.flatnonzero(choice != frame.stays)
    state = frame.stays.copy()
    counts = frame.counts(state)
    leased = fleet.node_leased
    devices = fleet.node_devices
    moves: list[Move] = []
    while len(left):
        gains = _move_gain(frame, counts, state[left], choice[left], model)
        pick = int(np.argmax(gains))
        lease = int(left[pick])
        old, new = int(state[lease]), int(choice[lease])
        old_node, new_node = int(frame.node[old]), int(frame.node[new])
        terms = _term_deltas(frame, counts, lease, old, new)
        moves.append(
            Move(
                request=compiled.request_ids[lease],
                from_device=fleet.device_ids[frame.start[lease]],
                to_device=fleet.device_ids[assignment[lease]],
                from_node=fleet.node_ids[old_node],
                to_node=fleet.node_ids[new_node],
                gain=int(gains[pick]),
                terms=terms,
                from_leased=int(leased[old_node] + counts[old_node]),
                from_devices=int(devices[old_node]),
                to_leased=int(leased[new_node] + counts[new_node]),
                to_devices=int(devices[new_node]),
            )
        )
        counts[old_node] -= 1
        counts[new_node] += 1
        state[lease] = new
        left = np.delete(left, pick)
    return tuple(moves)


def _term_deltas(
    frame: _Frame, counts: IntArray, lease: int, old: int, new: int
) -> tuple[tuple[str, int], ...]:
    model, compiled = frame.model, frame.compiled
    minimum = compiled.request_minimum[lease]
    devices = compiled.type_representative[frame.edges.target[[old, new]]]
    deltas = [(name, int(v[1] - v[0])) for name, v in model.edge_terms(minimum, devices)]
    old_node, new_node = int(frame.node[old]), int(frame.node[new])
    node_delta = 0
    if old_node != new_node:
        node_delta = int(
            model.node_reward(np.asarray([new_node]), int(counts[new_node]) + 1)[0]
            - model.node_reward(np.asarray([old_node]), int(counts[old_node]))[0]
        )
    return (*deltas, (model.node_term, node_delta))


def _shape(compiled: CompiledProblem, assignment: IndexArray) -> FleetShape:
    fleet = compiled.fleet
    leased = fleet.node_leased + node_counts(compiled, assignment)
    ready = fleet.node_ready & (fleet.node_devices > 0)
    share = leased[ready] / fleet.node_devices[ready]
    spread = float(np.std(share)) if len(share) else 0.0
    return FleetShape(
        int((leased[ready] > 0).sum()), round(spread, 4) if math.isfinite(spread) else 0.0
    )
