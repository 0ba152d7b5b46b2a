"""Which pairs a solver model gets: all of them, or a pruned, diverse few.

A model over every feasible pair is exact but grows as R × D (15 million (request, device)
pairs at 5,000 × 20,000, 3.7 million (request, device type) pairs), and a CP-SAT model costs
about a microsecond per pair to build and far more to solve. So:

* :func:`top_edges` (for the exact assignment, over devices) keeps each request's ``keep``
  best devices by a score that does not depend on the plan. With ``keep`` ≥ the number of
  requests an optimal matching of a separable objective uses only kept pairs (exchange
  argument: a request matched outside its list finds one of its ``keep`` listed devices free,
  since at most ``keep - 1`` others hold them, and that device scores at least as well).
* :func:`all_type_edges` (CP-SAT, small problems) is every (request, device type) pair.
* :func:`diversified_type_edges` (CP-SAT, larger problems) keeps a few device types per
  request: the class's best by score, the best type of each of the best nodes (so
  anti-affinity and spread have room), random feasible types of its own (so requests of one
  ask do not all compete for the same few), and its greedy device's type (so the greedy plan
  is a valid hint). Never only the tightest fits: under contention those are exactly the
  devices everyone wants.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from placement.arrays import IndexArray, IntArray
from placement.compiled import CompiledProblem
from placement.strategies import ScoreModel


@dataclass(frozen=True, eq=False)
class Edges:
    """Candidate pairs, sorted by request then target.

    Attributes:
        request: ``(E,)`` request rows.
        target: ``(E,)`` device rows (``top_edges``) or device type rows (the type edges).
        complete: every feasible pair is present.
    """

    request: IndexArray
    target: IndexArray
    complete: bool

    def __len__(self) -> int:
        return len(self.request)


def top_edge_count(compiled: CompiledProblem, keep: int) -> int:
    """How many pairs :func:`top_edges` would return for ``keep``."""
    return sum(len(c.members) * min(len(c.feasible), keep) for c in compiled.classes)


def top_edges(
    compiled: CompiledProblem, model: ScoreModel, class_scores: tuple[IntArray, ...], keep: int
) -> Edges:
    """(request, device) pairs: each request's ``keep`` best devices by edge score plus the node
    term of a first placement (exact for a separable model when ``keep`` ≥ R, see module doc)."""
    requests: list[IndexArray] = []
    devices: list[IndexArray] = []
    complete = True
    for c, scores in zip(compiled.classes, class_scores, strict=True):
        kept = c.feasible
        if len(kept) > keep:
            complete = False
            nodes = compiled.fleet.device_node[c.feasible]
            kept = c.feasible[_best(scores + model.node_reward(nodes, 1), keep)]
        requests.append(np.repeat(c.members, len(kept)))
        devices.append(np.tile(kept, len(c.members)))
    return merge_edges(compiled.fleet.num_devices, requests, devices, complete=complete)


def all_type_edges(compiled: CompiledProblem) -> Edges:
    """Every (request, feasible device type) pair."""
    requests = [np.repeat(c.members, len(c.feasible_types)) for c in compiled.classes]
    types = [np.tile(c.feasible_types, len(c.members)) for c in compiled.classes]
    return merge_edges(compiled.num_types, requests, types, complete=True)


def diversified_type_edges(
    compiled: CompiledProblem, model: ScoreModel, greedy: IndexArray, per_request: int, seed: int
) -> Edges:
    """About ``per_request`` device types per request (see the module doc), plus the type of
    its greedy device. A class with at most ``per_request`` feasible types keeps them all."""
    rng = np.random.default_rng(seed)
    n_top = max(per_request // 2, 1)
    n_nodes = max(per_request // 4, 1)
    n_random = max(per_request - n_top - n_nodes, 1)
    representative = compiled.type_representative
    requests: list[IndexArray] = []
    types: list[IndexArray] = []
    complete = True
    for c in compiled.classes:
        feasible, members = c.feasible_types, c.members
        if len(feasible) <= per_request:
            requests.append(np.repeat(members, len(feasible)))
            types.append(np.tile(feasible, len(members)))
            continue
        complete = False
        nodes = compiled.type_node[feasible]
        minimum = compiled.request_minimum[c.representative]
        static = model.edge_scores(minimum, representative[feasible])
        static = static + model.node_reward(nodes, 1)
        by_node = np.lexsort((-static, nodes))
        _, first = np.unique(nodes[by_node], return_index=True)
        node_best = by_node[first]
        node_best = node_best[_best(static[node_best], n_nodes)]
        shared = np.union1d(feasible[_best(static, n_top)], feasible[node_best])
        picks = feasible[rng.integers(0, len(feasible), size=(len(members), n_random))]
        requests += [np.repeat(members, len(shared)), np.repeat(members, n_random)]
        types += [np.tile(shared, len(members)), picks.ravel()]
        mine = greedy[members]
        requests.append(members[mine >= 0])
        types.append(compiled.device_type[mine[mine >= 0]])
    return merge_edges(compiled.num_types, requests, types, complete=complete)


def _best(scores: IntArray, count: int) -> IndexArray:
    """Positions of the ``count`` highest scores (all of them when there are fewer)."""
    if len(scores) <= count:
        return np.arange(len(scores), dtype=np.intp)
    return np.argpartition(-scores, count - 1)[:count].astype(np.intp)


def merge_edges(
    width: int, requests: list[IndexArray], targets: list[IndexArray], *, complete: bool
) -> Edges:
    """Deduplicated pairs, sorted by request then target (``width`` > every target)."""
    if not requests:
        empty = np.zeros(0, dtype=np.intp)
        return Edges(empty, empty, complete)
    width = max(width, 1)
    keys = np.concatenate(requests).astype(np.int64) * width + np.concatenate(targets)
    keys.sort()
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
    return Edges((keys // width).astype(np.intp), (keys % width).astype(np.intp), complete=complete)
