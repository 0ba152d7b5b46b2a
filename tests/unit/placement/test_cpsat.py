"""The CP-SAT model's constraint families on two- and three-device instances, windows, and the
bound it is given."""

from __future__ import annotations

import time

import numpy as np

from placement.candidates import all_type_edges
from placement.compiled import compile_problem
from placement.cpsat import CpSatResult, solve_cpsat
from placement.objective import UNPLACED, evaluate
from placement.problem import Device, Node, PlacementProblem, Request, Strategy
from placement.strategies import score_model

SMALL = (2.0, 4096.0, 32768.0)


def run(
    problem: PlacementProblem,
    start: list[int] | None = None,
    *,
    window: list[int] | None = None,
    upper_bound: int | None = None,
    strategy: Strategy = Strategy.BINPACK,
) -> CpSatResult:
    compiled = compile_problem(problem)
    hint = np.asarray(
        start if start is not None else [UNPLACED] * compiled.num_requests, dtype=np.intp
    )
    return solve_cpsat(
        compiled,
        score_model(compiled.fleet, strategy),
        all_type_edges(compiled),
        hint,
        deadline=time.perf_counter() + 5.0,
        num_workers=1,
        random_seed=0,
        window=None if window is None else np.asarray(window, dtype=np.intp),
        upper_bound=upper_bound,
    )


def placed(result: CpSatResult) -> list[int]:
    assert result.assignment is not None
    return [int(d) for d in result.assignment]


def test_identical_devices_form_one_type_whose_count_caps_its_requests() -> None:
    problem = PlacementProblem(
        (Node("n"),),
        (Device("a", "n", SMALL), Device("b", "n", SMALL)),
        tuple(Request(f"r{i}") for i in range(3)),
    )

    assert compile_problem(problem).num_types == 1
    assert sorted(d for d in placed(run(problem)) if d >= 0) == [0, 1]


def test_one_group_never_takes_two_devices_of_one_node() -> None:
    problem = PlacementProblem(
        (Node("n"), Node("m")),
        (Device("a", "n", SMALL), Device("b", "n", SMALL), Device("c", "m", SMALL)),
        (
            Request("x", tenant="t", anti_affinity_group="g"),
            Request("y", tenant="t", anti_affinity_group="g"),
            Request("z", tenant="t", anti_affinity_group="g"),
        ),
    )

    result = run(problem)

    devices = [d for d in placed(result) if d >= 0]
    assert len(devices) == 2
    assert 2 in devices  # one on node m, one on node n
    assert result.status == "OPTIMAL"


def test_groups_of_other_tenants_do_not_constrain_each_other() -> None:
    problem = PlacementProblem(
        (Node("n"),),
        (Device("a", "n", SMALL), Device("b", "n", SMALL)),
        (
            Request("x", tenant="t1", anti_affinity_group="g"),
            Request("y", tenant="t2", anti_affinity_group="g"),
        ),
    )

    assert sorted(placed(run(problem))) == [0, 1]


def test_the_node_slots_spread_a_batch() -> None:
    problem = PlacementProblem(
        (Node("n"), Node("m")),
        tuple(Device(f"{node}{i}", node, SMALL) for node in "nm" for i in range(2)),
        (Request("x"), Request("y")),
    )
    compiled = compile_problem(problem)

    assignment = placed(run(problem, strategy=Strategy.SPREAD))

    assert sorted(compiled.fleet.device_node[assignment].tolist()) == [0, 1]


def test_a_window_moves_only_its_own_requests() -> None:
    problem = PlacementProblem(
        (Node("n"),),
        (Device("small", "n", SMALL), Device("large", "n", (8.0, 16384.0, 131072.0))),
        (Request("fixed"), Request("moving")),
    )
    # "fixed" holds the small device (the best fit for both); only "moving" may change.
    result = run(problem, [0, UNPLACED], window=[1])

    assert placed(result) == [0, 1]


def test_cp_sat_never_reports_a_plan_above_the_bound_it_is_given() -> None:
    problem = PlacementProblem((Node("n"),), (Device("a", "n", SMALL),), (Request("x"),))
    compiled = compile_problem(problem)
    optimum = run(problem)
    assert optimum.assignment is not None
    value = evaluate(compiled, score_model(compiled.fleet, Strategy.BINPACK), optimum.assignment)

    at_bound = run(problem, upper_bound=value.objective)
    below = run(problem, upper_bound=value.objective - 1)

    assert at_bound.status == "OPTIMAL"
    assert placed(at_bound) == [0]
    # A (wrong) bound below the optimum only hides the better plans; solve() then keeps its
    # start plan, which is at least as good.
    assert placed(below) == [UNPLACED]
