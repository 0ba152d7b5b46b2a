"""What ``solve`` takes besides the problem, and what it returns: parameters and the plan.

All frozen values that pickle, so a plan computed in one Ray worker can be applied in another.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from placement.problem import Strategy


@dataclass(frozen=True, slots=True)
class SolverParams:
    """How hard and how to solve.

    Attributes:
        max_time_seconds: the whole call's budget; CP-SAT gets what the greedy plan and the
            model build leave of it, and the greedy plan is returned when it runs out.
        num_workers: CP-SAT search workers (threads).
        random_seed: seeds CP-SAT and the random part of the candidate devices.
        strategy: how to score devices (see ``placement.strategies``).
        weights: the strategy's (fit, balance, node) points, summing to ``SCALE``
            (``None``: its defaults, ``placement.strategies.POINTS``).
        candidates_per_request: devices each request keeps in the CP-SAT model when the
            problem is too large to give it every feasible device (diversified, plus the
            greedy choice).
        window_requests: requests per CP-SAT window on problems too large for one model.
        explain: compute per-assignment explanations (score terms and runner-up).
    """

    max_time_seconds: float = 1.0
    num_workers: int = 1
    random_seed: int = 0
    strategy: Strategy = Strategy.BINPACK
    weights: tuple[int, int, int] | None = None
    candidates_per_request: int = 32
    window_requests: int = 150
    explain: bool = True


class SolverKind(StrEnum):
    """Which solver produced a plan."""

    GREEDY = "greedy"
    ASSIGNMENT = "assignment"
    FLOW = "flow"
    CP_SAT = "cp_sat"


class Binding(StrEnum):
    """The constraint that left a request unplaced: the filter that removed its last device."""

    NO_READY_DEVICE = "no_ready_device"
    LABEL_SELECTOR = "label_selector"
    ANDROID_VERSION = "android_version"
    TAINTS = "taints"
    CPU = "cpu"
    MEMORY = "memory"
    STORAGE = "storage"
    TAKEN = "taken"
    ANTI_AFFINITY = "anti_affinity"


@dataclass(frozen=True, slots=True)
class DeviceChoice:
    """A device as a request would score it.

    Attributes:
        device_id: the device.
        node_id: its node.
        score: the placement's strategy score, in ``[0, strategies.SCALE]``.
        terms: the score's named parts (they sum to ``score``).
    """

    device_id: Hashable
    node_id: Hashable
    score: int
    terms: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a request got its device.

    Attributes:
        request_id: the request.
        chosen: the device it got, with its score terms.
        runner_up: the best other feasible device for it, scored as if it moved there with
            every other placement unchanged (``None`` when the chosen one was the only one).
        runner_up_taken_by: the request holding the runner-up in this plan, if any.
    """

    request_id: Hashable
    chosen: DeviceChoice
    runner_up: DeviceChoice | None
    runner_up_taken_by: Hashable | None


@dataclass(frozen=True, slots=True)
class Unplaced:
    """A request the plan leaves without a device, and why in words. ``unsatisfiable``: no
    device of the whole fleet, in any state, could ever serve it (not just none now)."""

    request_id: Hashable
    binding: Binding
    reason: str
    unsatisfiable: bool = False


@dataclass(frozen=True)
class PlacementPlan:
    """The answer of ``solve``.

    The objective is ``placed_weight * weight_unit + score``: the sum of the priorities of
    the placed requests first (``weight_unit`` exceeds any possible ``score``), then the
    strategy's score (see ``placement.objective``).

    Attributes:
        assignments: request id → device id.
        unplaced: request id → why it has no device.
        explanations: request id → why it got its device (empty when not asked for).
        objective: the plan's objective value.
        placed_weight: sum of the priorities of the placed requests.
        score: sum of the strategy scores of the placements.
        solver: which solver produced the plan.
        best_bound: an upper bound on the objective, proven: the exact solver's optimum, or
            with anti-affinity the lower of CP-SAT's best bound (when its model had every
            pair) and the optimum without anti-affinity (``placement.flow``); ``None`` when
            nothing was proven.
        bound_is_global: ``best_bound`` holds for the whole problem, not only for the
            candidate pairs a solver was given (always, when there is a bound).
        greedy_objective: the objective of the greedy plan (the floor every answer meets).
        solve_seconds: wall time of the ``solve`` call.
        notes: what happened on the way, in words (time-outs, fallbacks, pruning).
    """

    assignments: Mapping[Hashable, Hashable]
    unplaced: Mapping[Hashable, Unplaced]
    explanations: Mapping[Hashable, Explanation]
    objective: int
    placed_weight: int
    score: int
    solver: SolverKind
    best_bound: int | None
    bound_is_global: bool
    greedy_objective: int
    solve_seconds: float
    notes: tuple[str, ...] = ()

    @property
    def proven_optimal(self) -> bool:
        """The objective meets a bound that holds for the whole problem."""
        return (
            self.bound_is_global
            and self.best_bound is not None
            and (self.objective >= self.best_bound)
        )
