"""Explanations: the binding constraint of each unplaced request, and why placed ones got
their device."""

from __future__ import annotations

import pytest

from placement.plan import Binding, SolverParams
from placement.problem import Device, Node, PlacementProblem, Request, Strategy, Taint, Toleration
from placement.solve import solve
from tests.unit.placement.instances import random_fleet

SMALL = (2.0, 4096.0, 32768.0)
LARGE = (8.0, 16384.0, 131072.0)


def unplaced_reason(problem: PlacementProblem, request_id: str) -> tuple[Binding, str]:
    plan = solve(problem, SolverParams(max_time_seconds=2.0))
    reason = plan.unplaced[request_id]
    return reason.binding, reason.reason


NODES = (Node("eu-1", {"region": "eu"}), Node("us-1", {"region": "us"}))


def test_a_label_no_available_device_carries_is_the_binding_constraint() -> None:
    nodes = (*NODES, Node("ap-1", {"region": "ap"}))
    devices = (Device("d", "us-1", SMALL, "14"), Device("busy", "ap-1", SMALL, state="allocated"))
    problem = PlacementProblem(nodes, devices, (Request("r", selector={"region": "ap"}),))

    assert unplaced_reason(problem, "r") == (
        Binding.LABEL_SELECTOR,
        "no ready node has an available device with label region=ap",
    )


def test_a_label_no_device_of_the_fleet_carries_makes_the_request_unsatisfiable() -> None:
    problem = PlacementProblem(
        NODES, (Device("d", "us-1", SMALL, "14"),), (Request("r", selector={"region": "ap"}),)
    )

    plan = solve(problem)

    assert plan.unplaced["r"].unsatisfiable
    assert (plan.unplaced["r"].binding, plan.unplaced["r"].reason) == (
        Binding.LABEL_SELECTOR,
        "no device has label region=ap (region is one of: us)",
    )


def test_too_few_cores_anywhere_in_the_fleet_names_the_largest_device() -> None:
    problem = PlacementProblem(
        NODES,
        (Device("small-eu", "eu-1", SMALL, "14"), Device("large-us", "us-1", LARGE, "14")),
        (Request("r", minimum=(4.0, 0.0, 0.0), selector={"region": "eu"}),),
    )

    plan = solve(problem)

    assert plan.unplaced["r"].unsatisfiable
    assert (plan.unplaced["r"].binding, plan.unplaced["r"].reason) == (
        Binding.CPU,
        "no device with label region=eu has ≥ 4 cores; the largest has 2 cores",
    )


def test_too_few_cores_on_the_matching_nodes_is_the_binding_constraint() -> None:
    problem = PlacementProblem(
        NODES,
        (
            Device("small-eu", "eu-1", SMALL, "14"),
            Device("large-eu", "eu-1", LARGE, "14", state="allocated"),
            Device("large-us", "us-1", LARGE, "14"),
        ),
        (Request("r", minimum=(4.0, 0.0, 0.0), selector={"region": "eu"}),),
    )

    binding, reason = unplaced_reason(problem, "r")

    assert binding is Binding.CPU
    assert reason == (
        "no ready node with label region=eu has a device with ≥ 4 cores free"
        " (the largest there has 2 cores)"
    )


@pytest.mark.parametrize(
    ("minimum", "binding", "words"),
    [
        ((2.0, 8192.0, 0.0), Binding.MEMORY, "≥ 2 cores and ≥ 8192 MB memory free"),
        ((2.0, 4096.0, 65536.0), Binding.STORAGE, "≥ 4096 MB memory and ≥ 65536 MB storage free"),
    ],
)
def test_memory_and_storage_minimums_are_named_after_the_cores_they_passed(
    minimum: tuple[float, float, float], binding: Binding, words: str
) -> None:
    devices = (Device("d", "eu-1", SMALL, "14"), Device("busy", "eu-1", LARGE, state="allocated"))
    problem = PlacementProblem(NODES, devices, (Request("r", minimum=minimum),))

    found, reason = unplaced_reason(problem, "r")

    assert found is binding
    assert words in reason


def test_an_android_version_no_available_device_runs_is_the_binding_constraint() -> None:
    problem = PlacementProblem(
        NODES,
        (Device("d", "eu-1", SMALL, "13"), Device("busy", "eu-1", SMALL, "15", state="allocated")),
        (Request("r", android_version="15", selector={"region": "eu"}),),
    )

    assert unplaced_reason(problem, "r") == (
        Binding.ANDROID_VERSION,
        "no ready node with label region=eu has an available device running Android 15",
    )


def test_an_android_version_nobody_runs_names_the_versions_there_are() -> None:
    problem = PlacementProblem(
        NODES,
        (Device("d", "eu-1", SMALL, "13"), Device("e", "eu-1", SMALL, "14")),
        (Request("r", android_version="15", selector={"region": "eu"}),),
    )

    assert unplaced_reason(problem, "r") == (
        Binding.ANDROID_VERSION,
        "no device with label region=eu runs Android 15 (the fleet with label region=eu has"
        " 13, 14)",
    )


def test_an_untolerated_taint_is_the_binding_constraint() -> None:
    nodes = (Node("gpu-1", {"gpu": "true"}, (Taint("gpu", "true"),)),)
    devices = (Device("d", "gpu-1", LARGE, "14"),)

    binding, reason = unplaced_reason(PlacementProblem(nodes, devices, (Request("r"),)), "r")
    tolerated = solve(
        PlacementProblem(nodes, devices, (Request("r", tolerations=(Toleration("gpu"),)),))
    )

    assert binding is Binding.TAINTS
    assert "gpu=true:NoSchedule" in reason
    assert tolerated.assignments == {"r": "d"}


def test_without_a_ready_node_or_an_available_device_nothing_else_is_blamed() -> None:
    cordoned = (Node("n", {"region": "eu"}, status="cordoned"),)
    leased = (Node("n", {"region": "eu"}),)
    request = (Request("r", minimum=(1.0, 0.0, 0.0)),)

    assert unplaced_reason(
        PlacementProblem(cordoned, (Device("d", "n", SMALL),), request), "r"
    ) == (Binding.NO_READY_DEVICE, "no node is ready")
    assert unplaced_reason(
        PlacementProblem(leased, (Device("d", "n", SMALL, state="allocated"),), request), "r"
    ) == (Binding.NO_READY_DEVICE, "no ready node has an available device")


def test_while_every_device_is_busy_an_unsatisfiable_constraint_is_still_named() -> None:
    leased = (Node("n", {"region": "eu"}),)
    request = (Request("r", minimum=(64.0, 0.0, 0.0)),)

    plan = solve(PlacementProblem(leased, (Device("d", "n", SMALL, state="allocated"),), request))

    assert plan.unplaced["r"].unsatisfiable
    assert (plan.unplaced["r"].binding, plan.unplaced["r"].reason) == (
        Binding.CPU,
        "no device has ≥ 64 cores; the largest has 2 cores",
    )


def test_devices_held_by_higher_priority_requests_are_named_as_such() -> None:
    problem = PlacementProblem(
        NODES,
        (Device("d", "eu-1", SMALL, "14"),),
        (Request("low", priority=1), Request("high", priority=3)),
    )

    plan = solve(problem)

    assert plan.assignments == {"high": "d"}
    assert plan.unplaced["low"].binding is Binding.TAKEN
    assert plan.unplaced["low"].reason == (
        "the only matching device is taken by a higher-priority request in this plan"
    )


def test_anti_affinity_is_named_when_the_group_holds_every_node_with_a_free_device() -> None:
    problem = PlacementProblem(
        NODES,
        (Device("a", "eu-1", SMALL), Device("b", "eu-1", SMALL)),
        (
            Request("first", tenant="t", anti_affinity_group="batch", priority=2),
            Request("second", tenant="t", anti_affinity_group="batch"),
        ),
    )

    plan = solve(problem)

    assert list(plan.assignments) == ["first"]
    assert plan.unplaced["second"].binding is Binding.ANTI_AFFINITY
    assert "'batch'" in plan.unplaced["second"].reason


def test_a_placement_names_its_score_terms_and_the_runner_up() -> None:
    problem = PlacementProblem(
        NODES,
        (Device("snug", "eu-1", SMALL, "14"), Device("roomy", "us-1", LARGE, "14")),
        (Request("r", minimum=SMALL),),
    )

    plan = solve(problem, SolverParams(strategy=Strategy.BINPACK))
    explanation = plan.explanations["r"]

    assert explanation.chosen.device_id == "snug"
    assert dict(explanation.chosen.terms)["fit"] == 600
    assert sum(v for _, v in explanation.chosen.terms) == explanation.chosen.score
    assert explanation.runner_up is not None
    assert explanation.runner_up.device_id == "roomy"
    assert explanation.runner_up.score < explanation.chosen.score
    assert explanation.runner_up_taken_by is None


def test_a_runner_up_held_by_another_request_names_it() -> None:
    problem = PlacementProblem(
        NODES,
        (Device("a", "eu-1", SMALL), Device("b", "us-1", SMALL)),
        (Request("x", selector={"region": "eu"}), Request("y")),
    )

    plan = solve(problem)

    assert plan.assignments == {"x": "a", "y": "b"}
    assert plan.explanations["y"].runner_up is not None
    assert plan.explanations["y"].runner_up.device_id == "a"
    assert plan.explanations["y"].runner_up_taken_by == "x"


@pytest.mark.parametrize("strategy", list(Strategy))
def test_the_score_terms_of_all_placements_add_up_to_the_plan_score(strategy: Strategy) -> None:
    problem = random_fleet(requests=50, nodes=8, devices_per_node=10, seed=11)

    plan = solve(problem, SolverParams(max_time_seconds=1.0, strategy=strategy))

    assert sum(e.chosen.score for e in plan.explanations.values()) == plan.score
    for explanation in plan.explanations.values():
        assert explanation.chosen.device_id == plan.assignments[explanation.request_id]
        assert sum(v for _, v in explanation.chosen.terms) == explanation.chosen.score
        if explanation.runner_up is not None:
            assert explanation.runner_up.device_id != explanation.chosen.device_id


def test_explanations_can_be_turned_off() -> None:
    problem = random_fleet(requests=20, nodes=4, devices_per_node=8, seed=12)

    plan = solve(problem, SolverParams(explain=False))

    assert plan.explanations == {}
    assert plan.assignments
