"""The solvers against brute force on small instances, and the plan invariants on random ones."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placement.assignment import solve_assignment
from placement.candidates import all_type_edges, top_edges
from placement.compiled import compile_problem
from placement.cpsat import solve_cpsat
from placement.flow import anti_affinity_conflicts, relaxation_bound, solve_flow
from placement.greedy_batch import greedy_assign
from placement.objective import class_edge_scores, evaluate
from placement.plan import SolverKind, SolverParams
from placement.problem import PlacementProblem, Strategy
from placement.solve import solve
from placement.strategies import score_model
from tests.unit.placement.instances import brute_force_optimum, check_plan, problems, random_fleet

strategies = st.sampled_from(list(Strategy))
SMALL = settings(database=None, max_examples=40, deadline=None)


@SMALL
@given(problem=problems(groups=False))
def test_the_linear_sum_assignment_finds_the_brute_force_optimum_for_binpack(
    problem: PlacementProblem,
) -> None:
    compiled = compile_problem(problem)
    model = score_model(compiled.fleet, Strategy.BINPACK)
    scores = class_edge_scores(compiled, model)
    edges = top_edges(compiled, model, scores, keep=compiled.num_requests)

    assignment = solve_assignment(compiled, model, edges)

    assert assignment is not None
    assert evaluate(compiled, model, assignment).objective == brute_force_optimum(
        problem, Strategy.BINPACK
    )


def test_the_linear_sum_assignment_refuses_strategies_with_node_counts() -> None:
    compiled = compile_problem(random_fleet(requests=4, nodes=2, devices_per_node=2, seed=1))
    model = score_model(compiled.fleet, Strategy.SPREAD)
    edges = top_edges(compiled, model, class_edge_scores(compiled, model), keep=4)

    with pytest.raises(ValueError, match="separable"):
        solve_assignment(compiled, model, edges)


@SMALL
@given(problem=problems(groups=False), strategy=strategies)
def test_the_flow_finds_the_brute_force_optimum_without_anti_affinity(
    problem: PlacementProblem, strategy: Strategy
) -> None:
    compiled = compile_problem(problem)
    model = score_model(compiled.fleet, strategy)

    result = solve_flow(compiled, model)

    assert result.objective == brute_force_optimum(problem, strategy)
    assert evaluate(compiled, model, result.assignment).objective == result.objective


@SMALL
@given(problem=problems(), strategy=strategies)
def test_the_flow_bounds_the_optimum_with_anti_affinity(
    problem: PlacementProblem, strategy: Strategy
) -> None:
    compiled = compile_problem(problem)
    model = score_model(compiled.fleet, strategy)

    bound = relaxation_bound(compiled, model)

    assert bound == brute_force_optimum(problem, strategy, anti_affinity=False)
    assert bound >= brute_force_optimum(problem, strategy)


@SMALL
@given(problem=problems(), strategy=strategies)
def test_cp_sat_over_every_pair_finds_the_brute_force_optimum(
    problem: PlacementProblem, strategy: Strategy
) -> None:
    compiled = compile_problem(problem)
    model = score_model(compiled.fleet, strategy)
    greedy = greedy_assign(compiled, model, class_edge_scores(compiled, model))

    result = solve_cpsat(
        compiled,
        model,
        all_type_edges(compiled),
        greedy,
        deadline=time.perf_counter() + 10.0,
        num_workers=1,
        random_seed=0,
    )

    optimum = brute_force_optimum(problem, strategy)
    assert result.status == "OPTIMAL"
    assert result.assignment is not None
    assert evaluate(compiled, model, result.assignment).objective == optimum
    assert result.best_bound == optimum
    assert len(anti_affinity_conflicts(compiled, result.assignment)) == 0


@SMALL
@given(problem=problems(), strategy=strategies)
def test_solve_finds_the_brute_force_optimum_on_small_instances(
    problem: PlacementProblem, strategy: Strategy
) -> None:
    plan = solve(problem, SolverParams(max_time_seconds=10.0, strategy=strategy))

    check_plan(problem, plan)
    assert plan.objective == brute_force_optimum(problem, strategy)
    assert plan.proven_optimal


@settings(database=None, max_examples=25, deadline=None)
@given(
    problem=problems(max_requests=12, max_devices=16),
    strategy=strategies,
    window=st.sampled_from((3, 150)),
)
def test_every_plan_keeps_the_invariants_and_never_scores_below_greedy(
    problem: PlacementProblem, strategy: Strategy, window: int
) -> None:
    plan = solve(
        problem, SolverParams(max_time_seconds=0.5, strategy=strategy, window_requests=window)
    )

    check_plan(problem, plan)
    assert set(plan.explanations) == set(plan.assignments)


@settings(database=None, max_examples=40, deadline=None)
@given(problem=problems(max_requests=10, max_devices=12), strategy=strategies)
def test_the_greedy_plan_keeps_the_invariants(
    problem: PlacementProblem, strategy: Strategy
) -> None:
    plan = solve(problem, SolverParams(max_time_seconds=0.0, strategy=strategy))

    check_plan(problem, plan)
    assert plan.solver is SolverKind.GREEDY
    assert plan.objective == plan.greedy_objective


@pytest.mark.parametrize("strategy", list(Strategy))
def test_a_tiny_time_limit_still_returns_a_valid_plan(strategy: Strategy) -> None:
    problem = random_fleet(requests=60, nodes=12, devices_per_node=10, seed=7)

    plan = solve(problem, SolverParams(max_time_seconds=1e-6, strategy=strategy))

    check_plan(problem, plan)
    assert plan.solver is SolverKind.GREEDY
    assert plan.notes


@pytest.mark.parametrize(
    ("strategy", "groups", "solver"),
    [
        (Strategy.BINPACK, False, SolverKind.ASSIGNMENT),
        (Strategy.SPREAD, False, SolverKind.FLOW),
        (Strategy.BALANCED, False, SolverKind.FLOW),
        (Strategy.LEAST_LOADED, False, SolverKind.FLOW),
    ],
)
def test_problems_without_anti_affinity_are_solved_exactly(
    strategy: Strategy, groups: bool, solver: SolverKind
) -> None:
    problem = random_fleet(requests=40, nodes=10, devices_per_node=8, seed=3, groups=groups)

    plan = solve(problem, SolverParams(max_time_seconds=5.0, strategy=strategy))

    check_plan(problem, plan)
    assert plan.solver is solver
    assert plan.proven_optimal


def test_the_assignment_and_the_flow_agree_on_binpack() -> None:
    problem = random_fleet(requests=50, nodes=10, devices_per_node=8, seed=4, groups=False)
    compiled = compile_problem(problem)
    model = score_model(compiled.fleet, Strategy.BINPACK)
    edges = top_edges(compiled, model, class_edge_scores(compiled, model), keep=50)

    by_assignment = solve_assignment(compiled, model, edges)

    assert by_assignment is not None
    assert (
        evaluate(compiled, model, by_assignment).objective == solve_flow(compiled, model).objective
    )


@pytest.mark.parametrize("strategy", list(Strategy))
def test_batches_with_anti_affinity_go_to_cp_sat_and_stay_within_the_flow_bound(
    strategy: Strategy,
) -> None:
    problem = random_fleet(requests=60, nodes=12, devices_per_node=10, seed=5)

    plan = solve(problem, SolverParams(max_time_seconds=2.0, strategy=strategy))

    check_plan(problem, plan)
    assert plan.solver in (SolverKind.CP_SAT, SolverKind.FLOW)
    assert plan.best_bound is not None
    assert plan.bound_is_global


def test_large_batches_are_improved_window_by_window() -> None:
    problem = random_fleet(requests=240, nodes=30, devices_per_node=12, seed=6)

    plan = solve(
        problem,
        SolverParams(max_time_seconds=1.5, strategy=Strategy.SPREAD, window_requests=40),
    )

    check_plan(problem, plan)
    assert plan.solver in (SolverKind.CP_SAT, SolverKind.FLOW, SolverKind.GREEDY)
    assert plan.notes
