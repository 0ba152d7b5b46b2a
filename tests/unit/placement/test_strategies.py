"""Each strategy prefers what its docstring says, on two- and three-device instances."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from placement.compiled import compile_problem
from placement.plan import SolverParams
from placement.problem import Device, Node, PlacementProblem, Request, Strategy
from placement.solve import solve
from placement.strategies import POINTS, SCALE, score_model
from tests.unit.placement.instances import problems

SMALL = (2.0, 4096.0, 32768.0)
LARGE = (8.0, 16384.0, 131072.0)


def node_with(
    name: str, leased: int, free: int, size: tuple[float, float, float] = SMALL
) -> list[Device]:
    return [Device(f"{name}-leased-{i}", name, size, state="allocated") for i in range(leased)] + [
        Device(f"{name}-free-{i}", name, size) for i in range(free)
    ]


def placed_nodes(problem: PlacementProblem, strategy: Strategy) -> list[str]:
    plan = solve(problem, SolverParams(max_time_seconds=2.0, strategy=strategy))
    node_of = {d.id: d.node for d in problem.devices}
    return sorted(str(node_of[d]) for d in plan.assignments.values())


def two_nodes(busy: list[Device], idle: list[Device], requests: int) -> PlacementProblem:
    return PlacementProblem(
        (Node("busy"), Node("idle")),
        (*busy, *idle),
        tuple(Request(f"r{i}", minimum=SMALL) for i in range(requests)),
    )


def test_every_strategy_has_points_that_add_up_to_the_scale() -> None:
    assert set(POINTS) == set(Strategy)
    assert all(sum(points) == SCALE for points in POINTS.values())


def test_binpack_prefers_the_busy_node() -> None:
    problem = two_nodes(node_with("busy", 3, 1), node_with("idle", 0, 4), requests=1)

    assert placed_nodes(problem, Strategy.BINPACK) == ["busy"]


def test_binpack_prefers_the_tightest_fit() -> None:
    problem = PlacementProblem(
        (Node("n"),),
        (Device("large", "n", LARGE), Device("small", "n", SMALL)),
        (Request("r", minimum=SMALL),),
    )

    plan = solve(problem, SolverParams(strategy=Strategy.BINPACK))

    assert plan.assignments == {"r": "small"}


def test_spread_prefers_the_node_with_the_fewest_leased_devices() -> None:
    problem = two_nodes(node_with("busy", 3, 1), node_with("idle", 0, 4), requests=1)

    assert placed_nodes(problem, Strategy.SPREAD) == ["idle"]


def test_spread_evens_a_batch_across_empty_nodes() -> None:
    problem = two_nodes(node_with("busy", 0, 4), node_with("idle", 0, 4), requests=4)

    assert placed_nodes(problem, Strategy.SPREAD) == ["busy", "busy", "idle", "idle"]


def test_least_loaded_prefers_the_node_with_the_most_free_capacity() -> None:
    big = node_with("busy", 2, 6, LARGE)  # most free resources in absolute terms
    small = node_with("idle", 0, 2)  # emptier, but small
    problem = two_nodes(big, small, requests=1)

    assert placed_nodes(problem, Strategy.LEAST_LOADED) == ["busy"]
    assert placed_nodes(problem, Strategy.SPREAD) == ["idle"]


def test_balanced_evens_utilisation_across_nodes() -> None:
    problem = two_nodes(node_with("busy", 2, 2), node_with("idle", 0, 4), requests=3)

    # "busy" is at 50 % and "idle" at 0 %: two placements on idle bring it to 50 %, the third
    # goes to whichever keeps utilisation even.
    assert placed_nodes(problem, Strategy.BALANCED).count("idle") >= 2
    assert placed_nodes(problem, Strategy.BINPACK) == ["busy", "busy", "idle"]


@settings(database=None, max_examples=40, deadline=None)
@given(problem=problems(), strategy=st.sampled_from(list(Strategy)))
def test_scores_are_integers_within_the_scale_and_node_terms_never_grow_with_the_count(
    problem: PlacementProblem, strategy: Strategy
) -> None:
    compiled = compile_problem(problem)
    model = score_model(compiled.fleet, strategy)
    devices = np.arange(compiled.fleet.num_devices)
    nodes = np.arange(compiled.fleet.num_nodes)

    for c in compiled.classes:
        scores = model.edge_scores(compiled.request_minimum[c.representative], devices)
        assert scores.dtype == np.int64
        assert ((scores >= 0) & (scores <= SCALE - model.node_points)).all()
    rewards = np.stack([model.node_reward(nodes, slot) for slot in range(1, 8)])
    assert ((rewards >= 0) & (rewards <= model.node_points)).all()
    assert (np.diff(rewards, axis=0) <= 0).all()
    counts = np.asarray([min(3, i) for i in range(len(nodes))], dtype=np.int64)
    expected = sum(int(rewards[: counts[n], n].sum()) for n in nodes)
    assert model.node_total(counts) == expected
    assert model.separable == (strategy is Strategy.BINPACK or len(nodes) == 0)
