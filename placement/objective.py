r"""The objective every solver maximizes, evaluated the same way for all of them.

For a plan placing request :math:`r` on device :math:`d_r` (the set :math:`P` of placed
requests), with :math:`p_n` placements on node :math:`n`:

.. math::

    \text{objective} = U \sum_{r \in P} w_r
        + \sum_{r \in P} e(r, d_r) + \sum_n \sum_{j=1}^{p_n} \nu_n(j)

where :math:`w_r` is the priority, :math:`e` the device-dependent score terms and
:math:`\nu_n(j)` the node term of ``placement.strategies``. Every placement scores at most
``SCALE``, so the *weight unit* :math:`U = \text{SCALE} \cdot R + 1` exceeds any score sum:
the priority-weighted count of placed requests comes first, the strategy's score breaks ties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from placement.arrays import IndexArray, IntArray
from placement.compiled import CompiledProblem
from placement.strategies import SCALE, ScoreModel

#: Marks an unplaced request in an assignment vector.
UNPLACED = -1


def weight_unit(num_requests: int) -> int:
    """The objective's weight of one priority point (more than any sum of scores)."""
    return SCALE * max(num_requests, 1) + 1


@dataclass(frozen=True, slots=True)
class Evaluation:
    """An assignment's objective, split into its two levels."""

    placed_weight: int
    score: int
    objective: int


def node_counts(compiled: CompiledProblem, assignment: IndexArray) -> IntArray:
    """``(N,)`` placements per node in ``assignment`` (device row per request, -1 unplaced)."""
    placed = assignment[assignment >= 0]
    nodes = compiled.fleet.device_node[placed]
    return np.bincount(nodes, minlength=compiled.fleet.num_nodes).astype(np.int64)


def evaluate(compiled: CompiledProblem, model: ScoreModel, assignment: IndexArray) -> Evaluation:
    """The objective of ``assignment``: device row per request, ``UNPLACED`` when none."""
    rows = np.flatnonzero(assignment >= 0)
    devices = assignment[rows]
    placed_weight = int(compiled.request_weight[rows].sum())
    edge = int(model.edge_scores(compiled.request_minimum[rows], devices).sum()) if len(rows) else 0
    score = edge + model.node_total(node_counts(compiled, assignment))
    unit = weight_unit(compiled.num_requests)
    return Evaluation(placed_weight, score, placed_weight * unit + score)


def class_edge_scores(compiled: CompiledProblem, model: ScoreModel) -> tuple[IntArray, ...]:
    """Per request class, the edge score of each of its feasible devices (same order)."""
    return tuple(
        model.edge_scores(compiled.request_minimum[c.representative], c.feasible)
        for c in compiled.classes
    )
