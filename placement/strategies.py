r"""Strategy scores: how good a device is for a request, as integers CP-SAT can use.

Notation. A device :math:`d` has resources :math:`c_d \in \mathbb{R}^3` (cores, memory,
storage) and sits on node :math:`n`; a request :math:`r` asks for at least :math:`m_r`.
:math:`\sigma_k` is the largest device's resource :math:`k`. A node has capacity
:math:`C_n`, leased load :math:`L_n` (its leased devices' resources, before the plan),
:math:`k_n` leased devices out of :math:`N_n`, and mean device :math:`\hat c_n`.
:math:`\operatorname{mean}_k` averages over the three resources; :math:`[x]` clips to
:math:`[0, 1]`.

The score of placing :math:`r` on :math:`d` as the :math:`j`-th placement of the plan on
node :math:`n` is a sum of terms, each ``round(points × t)`` with :math:`t \in [0, 1]` and
points summing to :data:`SCALE`, so every score is an integer in ``[0, SCALE]``:

* **fit** (every strategy): :math:`t = 1 - \operatorname{mean}_k (c_{dk} - m_{rk}) /
  \sigma_k`, 1 for an exact fit; big devices stay free for requests that need them.
* **node** (one per strategy), a function of the node and of :math:`j` only:
  :math:`t_n(j) = [a_n - b_n (j - 1)]`.

  - ``binpack``: :math:`a_n = \operatorname{mean}_k L_{nk} / C_{nk}` (the node's
    utilisation), :math:`b_n = 0`. Busy nodes first, so idle ones stay empty to drain.
  - ``spread``: :math:`a_n = 1 - k_n / N_n`, :math:`b_n = 1 / N_n`: the share of the node's
    devices still unleased before this placement. Fewest leased devices first.
  - ``least_loaded``: :math:`a_n = \operatorname{mean}_k (C_{nk} - L_{nk}) / \hat C_k`,
    :math:`b_n = \operatorname{mean}_k \hat c_{nk} / \hat C_k`, with :math:`\hat C_k` the
    largest node's capacity: the node's absolute free capacity before this placement. The
    node with the most free resources first (big nodes take more).
  - ``balanced``: :math:`a_n = 1 - \operatorname{mean}_k (L_{nk} + \hat c_{nk}) / C_{nk}`,
    :math:`b_n = \operatorname{mean}_k \hat c_{nk} / C_{nk}`: one minus the node's
    utilisation after this placement, relative to its own capacity.
* **balance** (``balanced`` only): :math:`t = 1 - (\max_k - \min_k) (L_{nk} + c_{dk}) /
  C_{nk}`, so a placement keeps cpu, memory and storage equally used on its node.

Points: binpack fit 600 + node 400; spread and least_loaded node 800 + fit 200; balanced
node 600 + balance 200 + fit 200.

Because :math:`t_n(j)` never increases with :math:`j`, the plan's node term
:math:`\sum_n \sum_{j=1}^{p_n} t_n(j)` is concave in the node's placement count :math:`p_n`:
maximizing it evens counts (spread), free capacity (least_loaded) or utilisation (balanced)
across nodes. For balanced, with :math:`u_n = \operatorname{mean}_k L_{nk} / C_{nk}` and
away from the clip, :math:`\sum_{j=1}^{p} (1 - u_n - b_n j) = p (1 - u_n) - b_n p (p + 1) / 2`;
for a fixed number of placements, maximizing it minimizes
:math:`\sum_n (u_n + b_n p_n)^2 / 2 b_n` (plus :math:`b_n p_n / 2` and a constant): least
squares on the utilisations after the plan. Using the node's mean device :math:`\hat c_n`
instead of the device itself keeps the term a function of counts, which the min-cost flow
(``placement.flow``) and CP-SAT (one ordered boolean per node and slot) model exactly; it is
exact on nodes of one device size. With :math:`b_n = 0` (binpack) the score is a sum over
placements alone, which the linear sum assignment solves exactly.

Each term is rounded on its own, so the named terms of an explanation add up to its score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from placement.arrays import FleetArrays, FloatArray, IndexArray, IntArray
from placement.problem import Strategy

#: Every placement's score is an integer in ``[0, SCALE]``.
SCALE = 1000

#: (fit, balance, node) points per strategy; each row sums to ``SCALE``. A strategy of the
#: catalogue may weigh its terms otherwise (``SolverParams.weights``), balance only if
#: ``balanced``.
POINTS: dict[Strategy, tuple[int, int, int]] = {
    Strategy.BINPACK: (600, 0, 400),
    Strategy.SPREAD: (200, 0, 800),
    Strategy.LEAST_LOADED: (200, 0, 800),
    Strategy.BALANCED: (200, 200, 600),
}

#: Name of the node term in explanations.
NODE_TERM = {
    Strategy.BINPACK: "node_busy",
    Strategy.SPREAD: "node_unleased_share",
    Strategy.LEAST_LOADED: "node_free_capacity",
    Strategy.BALANCED: "node_headroom",
}


@dataclass(frozen=True, eq=False)
class ScoreModel:
    """One strategy's scoring over one fleet (see the module docstring for the math).

    Attributes:
        node_a, node_b: ``(N,)`` the node term is ``round(node_points × [a − b (j − 1)])``.
    """

    strategy: Strategy
    fleet: FleetArrays
    fit_points: int
    balance_points: int
    node_points: int
    node_a: FloatArray
    node_b: FloatArray

    @property
    def separable(self) -> bool:
        """The node term does not depend on the plan, so a score is a sum over placements."""
        return bool(np.all(self.node_b == 0.0))

    @property
    def node_term(self) -> str:
        """The node term's name in explanations."""
        return NODE_TERM[self.strategy]

    def edge_terms(self, minimum: FloatArray, devices: IndexArray) -> list[tuple[str, IntArray]]:
        """The terms that depend on the device: ``fit`` (and ``balance``), one value per device.

        Args:
            minimum: ``(3,)`` one request's minimum, or ``(k, 3)`` one per device.
            devices: ``(k,)`` device rows.
        """
        fleet = self.fleet
        capacity = fleet.device_capacity[devices]
        surplus = np.maximum(capacity - minimum, 0.0) / fleet.resource_scale
        fit = 1.0 - surplus.mean(axis=1)
        terms = [("fit", _points(self.fit_points, fit))]
        if self.balance_points:
            nodes = fleet.device_node[devices]
            after = _ratio(fleet.node_load[nodes] + capacity, fleet.node_capacity[nodes])
            spread = after.max(axis=1) - after.min(axis=1)
            terms.append(("balance", _points(self.balance_points, 1.0 - spread)))
        return terms

    def edge_scores(self, minimum: FloatArray, devices: IndexArray) -> IntArray:
        """Sum of :meth:`edge_terms` per device."""
        terms = self.edge_terms(minimum, devices)
        total = terms[0][1].copy()
        for _, values in terms[1:]:
            total += values
        return total

    def node_reward(self, nodes: IndexArray, slot: IntArray | int) -> IntArray:
        """The node term of the ``slot``-th placement (1-based) of the plan on each node."""
        value = self.node_a[nodes] - self.node_b[nodes] * (np.asarray(slot) - 1)
        return _points(self.node_points, value)

    def node_total(self, counts: IntArray) -> int:
        """``Σ_n Σ_{j=1}^{counts[n]} node_reward(n, j)``: the plan's node term."""
        nodes = np.repeat(np.arange(len(counts)), counts)
        if len(nodes) == 0:
            return 0
        first = np.cumsum(counts) - counts
        slots = np.arange(len(nodes)) - np.repeat(first, counts) + 1
        return int(self.node_reward(nodes, slots).sum())


def score_model(
    fleet: FleetArrays, strategy: Strategy, weights: tuple[int, int, int] | None = None
) -> ScoreModel:
    """Build the node coefficients of ``strategy`` for ``fleet``, with its (fit, balance,
    node) points (``weights``, or its defaults)."""
    fit, balance, node = weights or POINTS[strategy]
    load = _ratio(fleet.node_load, fleet.node_capacity).mean(axis=1)
    mean_share = _ratio(fleet.node_mean_device, fleet.node_capacity).mean(axis=1)
    zeros = np.zeros(fleet.num_nodes)
    if strategy is Strategy.BINPACK:
        a, b = load, zeros
    elif strategy is Strategy.SPREAD:
        devices = np.maximum(fleet.node_devices, 1).astype(np.float64)
        a, b = 1.0 - fleet.node_leased / devices, 1.0 / devices
    elif strategy is Strategy.LEAST_LOADED:
        largest = fleet.node_capacity.max(axis=0) if fleet.num_nodes else np.ones(3)
        largest = np.maximum(largest, 1e-9)
        a = ((fleet.node_capacity - fleet.node_load) / largest).mean(axis=1)
        b = (fleet.node_mean_device / largest).mean(axis=1)
    else:
        a, b = 1.0 - load - mean_share, mean_share
    return ScoreModel(strategy, fleet, fit, balance, node, a, b)


def _points(points: int, value: FloatArray) -> IntArray:
    return np.rint(points * np.clip(value, 0.0, 1.0)).astype(np.int64)


def _ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """``numerator / denominator`` with 0 where the denominator is 0 (a resource the node
    does not have cannot be used)."""
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out
