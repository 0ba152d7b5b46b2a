"""The problem model validates itself, follows the domain's taint rule, and problems and plans
pickle (they cross Ray)."""

from __future__ import annotations

import pickle

import pytest

from placement.plan import SolverParams
from placement.problem import (
    MAX_PRIORITY,
    Device,
    InvalidProblem,
    Node,
    PlacementProblem,
    Request,
    Strategy,
    Taint,
    Toleration,
)
from placement.solve import solve
from tests.unit.placement.instances import random_fleet

SMALL = (2.0, 4096.0, 32768.0)


@pytest.mark.parametrize(
    ("nodes", "devices", "requests", "message"),
    [
        ((Node("n"), Node("n")), (), (), "two nodes"),
        ((Node("n"),), (Device("d", "n", SMALL), Device("d", "n", SMALL)), (), "two devices"),
        ((Node("n"),), (), (Request("r"), Request("r")), "two requests"),
        ((Node("n"),), (Device("d", "elsewhere", SMALL),), (), "unknown node"),
        ((), (), (Request("r", priority=0),), "priority 0"),
        ((), (), (Request("r", priority=MAX_PRIORITY + 1),), "outside"),
    ],
)
def test_an_inconsistent_problem_is_refused(
    nodes: tuple[Node, ...],
    devices: tuple[Device, ...],
    requests: tuple[Request, ...],
    message: str,
) -> None:
    with pytest.raises(InvalidProblem, match=message):
        PlacementProblem(nodes, devices, requests)


@pytest.mark.parametrize(
    ("taint", "tolerations", "tolerated"),
    [
        (Taint("gpu", "true"), (), False),
        (Taint("gpu", "true"), (Toleration("gpu"),), True),
        (Taint("gpu", "true"), (Toleration("gpu", "true"),), True),
        (Taint("gpu", "true"), (Toleration("gpu", "false"),), False),
        (Taint("spot", "", "NoExecute"), (), False),
        (Taint("spot", "", "PreferNoSchedule"), (), True),
    ],
)
def test_taints_follow_the_domain_rule(
    taint: Taint, tolerations: tuple[Toleration, ...], tolerated: bool
) -> None:
    assert taint.is_tolerated_by(tolerations) is tolerated


def test_a_request_without_a_group_has_no_group_key_and_groups_are_scoped_by_tenant() -> None:
    assert Request("r").group_key is None
    assert Request("r", tenant="a", anti_affinity_group="g").group_key == ("a", "g")


def test_an_empty_problem_gives_an_empty_plan() -> None:
    plan = solve(PlacementProblem((), (), ()))

    assert plan.assignments == {}
    assert plan.unplaced == {}
    assert plan.objective == 0


def test_a_problem_and_its_plan_survive_pickling() -> None:
    problem = random_fleet(requests=30, nodes=6, devices_per_node=8, seed=2)
    plan = solve(problem, SolverParams(max_time_seconds=1.0, strategy=Strategy.SPREAD))

    problem_again = pickle.loads(pickle.dumps(problem))
    plan_again = pickle.loads(pickle.dumps(plan))

    assert problem_again == problem
    assert plan_again == plan
    assert plan_again.unplaced or plan_again.assignments
    assert pickle.loads(pickle.dumps(SolverParams(strategy=Strategy.BALANCED))) == SolverParams(
        strategy=Strategy.BALANCED
    )
