"""Candidate pools and the window-by-window CP-SAT search on mid-sized batches."""

from __future__ import annotations

import time

import numpy as np
import pytest

from placement.candidates import diversified_type_edges
from placement.compiled import CompiledProblem, compile_problem
from placement.flow import anti_affinity_conflicts, relaxation_bound
from placement.greedy_batch import greedy_assign
from placement.objective import class_edge_scores, evaluate
from placement.problem import Strategy
from placement.strategies import score_model
from placement.windows import improve_in_windows
from tests.unit.placement.instances import random_fleet


def assert_feasible(compiled: CompiledProblem, assignment: np.ndarray) -> None:
    placed = assignment[assignment >= 0]
    assert len(np.unique(placed)) == len(placed), "a device serves two requests"
    for row in np.flatnonzero(assignment >= 0).tolist():
        feasible = compiled.classes[compiled.request_class[row]].feasible
        assert assignment[row] in feasible
    assert len(anti_affinity_conflicts(compiled, assignment)) == 0


def test_the_candidate_pool_keeps_every_greedy_pair_and_only_feasible_types() -> None:
    compiled = compile_problem(random_fleet(requests=120, nodes=20, devices_per_node=12, seed=8))
    model = score_model(compiled.fleet, Strategy.SPREAD)
    greedy = greedy_assign(compiled, model, class_edge_scores(compiled, model))

    pool = diversified_type_edges(compiled, model, greedy, per_request=8, seed=0)

    pairs = set(zip(pool.request.tolist(), pool.target.tolist(), strict=True))
    for row in np.flatnonzero(greedy >= 0).tolist():
        assert (row, int(compiled.device_type[greedy[row]])) in pairs
    for row, t in pairs:
        assert t in compiled.classes[compiled.request_class[row]].feasible_types
    assert not pool.complete
    assert np.all(np.diff(pool.request) >= 0)


@pytest.mark.parametrize("strategy", [Strategy.BINPACK, Strategy.SPREAD])
def test_windows_only_improve_the_plan_and_keep_it_feasible(strategy: Strategy) -> None:
    compiled = compile_problem(random_fleet(requests=200, nodes=25, devices_per_node=12, seed=9))
    model = score_model(compiled.fleet, strategy)
    greedy = greedy_assign(compiled, model, class_edge_scores(compiled, model))
    pool = diversified_type_edges(compiled, model, greedy, per_request=16, seed=0)
    bound = relaxation_bound(compiled, model)

    result = improve_in_windows(
        compiled,
        model,
        pool,
        greedy,
        deadline=time.perf_counter() + 1.0,
        window_requests=40,
        num_workers=1,
        random_seed=0,
        upper_bound=bound,
    )

    assert result.windows >= 1
    assert result.evaluation == evaluate(compiled, model, result.assignment)
    assert evaluate(compiled, model, greedy).objective <= result.evaluation.objective <= bound
    assert_feasible(compiled, result.assignment)
