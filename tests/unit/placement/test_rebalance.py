"""The rebalance planner: moves within the budget, only to free devices of the lease's size,
the objective they claim, and CP-SAT's plan as good as the best found by brute force."""

from __future__ import annotations

import itertools
from collections.abc import Hashable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placement.objective import evaluate
from placement.plan import SolverParams
from placement.problem import Device, InvalidProblem, Node, PlacementProblem, Request, Strategy
from placement.rebalance import STAY_BONUS, RebalancePlan, _compile, packing_model, plan_rebalance
from placement.strategies import score_model

SMALL = (2.0, 4096.0, 32768.0)
BIG = (8.0, 16384.0, 131072.0)


def _fleet(
    layout: dict[str, list[tuple[str, tuple[float, float, float]]]],
) -> tuple[PlacementProblem, dict[Hashable, Hashable]]:
    """Nodes of devices given as (state, size); ``leased`` devices become the leases to
    rebalance, ``allocated`` ones stay as load."""
    nodes = tuple(Node(name) for name in layout)
    devices: list[Device] = []
    requests: list[Request] = []
    current: dict[Hashable, Hashable] = {}
    for node, specs in layout.items():
        for i, (state, size) in enumerate(specs):
            device_id = f"{node}-d{i}"
            leased = state == "leased"
            devices.append(
                Device(device_id, node, size, "14", {}, "allocated" if leased else state)
            )
            if leased:
                lease = f"lease-{device_id}"
                requests.append(Request(lease, size, "14"))
                current[lease] = device_id
    return PlacementProblem(nodes, tuple(devices), tuple(requests)), current


def _plan(
    problem: PlacementProblem,
    current: dict[Hashable, Hashable],
    strategy: Strategy,
    max_moves: int,
    **kwargs: bool,
) -> RebalancePlan:
    params = SolverParams(max_time_seconds=5.0, strategy=strategy)
    return plan_rebalance(problem, current, params, max_moves, **kwargs)


def test_spread_moves_leases_off_the_crowded_node_within_the_budget() -> None:
    problem, current = _fleet({"a": [("leased", SMALL)] * 4, "b": [("available", SMALL)] * 4})
    plan = _plan(problem, current, Strategy.SPREAD, max_moves=2)
    assert len(plan.moves) == 2
    assert {m.to_node for m in plan.moves} == {"b"}
    assert plan.objective_after > plan.objective_before
    assert plan.shape_before.nodes_in_use == 1 and plan.shape_after.nodes_in_use == 2
    assert plan.shape_after.utilisation_spread < plan.shape_before.utilisation_spread
    one = _plan(problem, current, Strategy.SPREAD, max_moves=1)
    assert len(one.moves) == 1


def test_binpack_frees_a_whole_node() -> None:
    problem, current = _fleet(
        {
            "a": [("leased", SMALL), ("available", SMALL), ("available", SMALL)],
            "b": [("leased", SMALL), ("leased", SMALL), ("available", SMALL)],
        }
    )
    plan = _plan(problem, current, Strategy.BINPACK, max_moves=5)
    assert [(m.from_node, m.to_node) for m in plan.moves] == [("a", "b")]
    assert plan.shape_after.nodes_in_use == 1
    move = plan.moves[0]
    assert move.from_leased == 1 and move.to_leased == 2 and move.to_devices == 3
    assert move.gain > 0 and dict(move.terms)["node_busy"] == move.gain


def test_a_lease_moves_only_to_a_free_device_of_its_own_size() -> None:
    problem, current = _fleet(
        {
            "a": [("leased", SMALL), ("leased", SMALL), ("leased", BIG)],
            "b": [("available", BIG), ("allocated", SMALL), ("available", SMALL)],
        }
    )
    plan = _plan(problem, current, Strategy.SPREAD, max_moves=3)
    sizes = {d.id: d.capacity for d in problem.devices}
    held = set(current.values())
    targets = [m.to_device for m in plan.moves]
    assert len(set(targets)) == len(targets)
    for move in plan.moves:
        assert sizes[move.to_device] == sizes[move.from_device]
        assert move.to_device not in held  # never a device another lease leaves
        assert move.to_device != "b-d1"  # leased by someone not rebalanced


def test_no_move_when_nothing_gains_more_than_it_disturbs() -> None:
    problem, current = _fleet(
        {
            "a": [("leased", SMALL), ("available", SMALL)],
            "b": [("leased", SMALL), ("available", SMALL)],
        }
    )
    plan = _plan(problem, current, Strategy.SPREAD, max_moves=4)
    assert plan.moves == ()
    assert plan.objective_after == plan.objective_before
    assert _plan(problem, current, Strategy.SPREAD, max_moves=0).moves == ()


def test_a_lease_without_a_device_is_refused() -> None:
    problem, _ = _fleet({"a": [("leased", SMALL)]})
    with pytest.raises(InvalidProblem):
        plan_rebalance(problem, {}, SolverParams(), 1)


@st.composite
def fleets(draw: st.DrawFn) -> tuple[PlacementProblem, dict[Hashable, Hashable]]:
    layout: dict[str, list[tuple[str, tuple[float, float, float]]]] = {}
    for n in range(draw(st.integers(2, 3))):
        layout[f"n{n}"] = [
            (
                draw(st.sampled_from(("leased", "leased", "available", "available", "allocated"))),
                draw(st.sampled_from((SMALL, SMALL, BIG))),
            )
            for _ in range(draw(st.integers(1, 3)))
        ]
    return _fleet(layout)


def _brute_force(
    problem: PlacementProblem, current: dict[Hashable, Hashable], strategy: Strategy, budget: int
) -> int:
    """The best objective plus stay bonus over every plan within the budget."""
    compiled, start = _compile(problem, current)
    model = packing_model(score_model(compiled.fleet, strategy))
    fleet = compiled.fleet
    free = [
        d
        for d in range(fleet.num_devices)
        if fleet.device_available[d] and d not in set(start.tolist())
    ]
    options = [
        [int(start[r])]
        + [
            d
            for d in free
            if np.array_equal(fleet.device_capacity[d], fleet.device_capacity[start[r]])
        ]
        for r in range(len(start))
    ]
    best = None
    for combo in itertools.product(*options):
        moved = sum(1 for r, d in enumerate(combo) if d != start[r])
        targets = [d for r, d in enumerate(combo) if d != start[r]]
        if moved > budget or len(set(targets)) != len(targets):
            continue
        value = evaluate(compiled, model, np.asarray(combo, dtype=np.intp)).objective
        value += STAY_BONUS * (len(start) - moved)
        best = value if best is None else max(best, value)
    assert best is not None
    return best


@settings(max_examples=60, deadline=None)
@given(
    fleets(),
    st.sampled_from(list(Strategy)),
    st.integers(0, 3),
)
def test_the_plan_is_optimal_on_small_fleets_and_never_worse_than_greedy(
    fleet: tuple[PlacementProblem, dict[Hashable, Hashable]], strategy: Strategy, budget: int
) -> None:
    problem, current = fleet
    plan = _plan(problem, current, strategy, budget)
    greedy = _plan(problem, current, strategy, budget, use_cp_sat=False)
    stays = len(current) - len(plan.moves)
    net = plan.objective_after + STAY_BONUS * stays
    assert len(plan.moves) <= budget
    assert net >= greedy.objective_after + STAY_BONUS * (len(current) - len(greedy.moves))
    assert net == _brute_force(problem, current, strategy, budget)
    compiled, start = _compile(problem, current)
    model = packing_model(score_model(compiled.fleet, strategy))
    assert plan.objective_before == evaluate(compiled, model, start).objective
