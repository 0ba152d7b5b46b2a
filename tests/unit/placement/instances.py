"""Small placement problems for property tests, an independent feasibility check, a
brute-force optimum and the invariants every plan must keep."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
from hypothesis import strategies as st

from placement.compiled import compile_problem
from placement.objective import weight_unit
from placement.plan import PlacementPlan
from placement.problem import (
    Device,
    Node,
    PlacementProblem,
    Request,
    Strategy,
    Taint,
    Toleration,
    Vector,
)
from placement.strategies import score_model

SIZES: tuple[Vector, ...] = (
    (2.0, 4096.0, 32768.0),
    (4.0, 8192.0, 65536.0),
    (8.0, 16384.0, 131072.0),
)
ANDROID = ("13", "14")
REGIONS = ("eu", "us")
GPU_TAINT = Taint("gpu", "true")


@st.composite
def problems(
    draw: st.DrawFn, max_requests: int = 6, max_devices: int = 6, groups: bool = True
) -> PlacementProblem:
    """A fleet of up to ``max_devices`` devices on 1–3 nodes and up to ``max_requests``
    requests with selectors, Android versions, tolerations, priorities and (when ``groups``)
    anti-affinity groups."""
    n_nodes = draw(st.integers(1, 3))
    nodes: list[Node] = []
    for n in range(n_nodes):
        tainted = draw(st.booleans()) and draw(st.booleans())
        nodes.append(
            Node(
                f"n{n}",
                {"region": draw(st.sampled_from(REGIONS))},
                (GPU_TAINT,) if tainted else (),
                draw(st.sampled_from(("ready", "ready", "ready", "cordoned"))),
            )
        )
    n_devices = draw(st.integers(1, max_devices))
    devices = [
        Device(
            f"d{i}",
            f"n{draw(st.integers(0, n_nodes - 1))}",
            draw(st.sampled_from(SIZES)),
            draw(st.sampled_from(ANDROID)),
            {"tier": "gold"} if draw(st.booleans()) and draw(st.booleans()) else {},
            draw(st.sampled_from(("available", "available", "available", "allocated"))),
        )
        for i in range(n_devices)
    ]
    n_requests = draw(st.integers(1, max_requests))
    requests = []
    for r in range(n_requests):
        selector: dict[str, str] = {}
        if draw(st.booleans()):
            selector["region"] = draw(st.sampled_from(REGIONS))
        if draw(st.integers(0, 5)) == 0:
            selector["tier"] = "gold"
        group = draw(st.sampled_from((None, None, "a", "b"))) if groups else None
        requests.append(
            Request(
                f"r{r}",
                draw(st.sampled_from(((0.0, 0.0, 0.0), *SIZES))),
                draw(st.sampled_from((None, None, *ANDROID))),
                selector,
                (Toleration("gpu"),) if draw(st.booleans()) else (),
                draw(st.integers(1, 3)),
                "t",
                group,
            )
        )
    return PlacementProblem(tuple(nodes), tuple(devices), tuple(requests))


def feasible(problem: PlacementProblem, request: Request, device: Device) -> bool:
    """Whether ``request`` may take ``device``, straight from the rules (no arrays)."""
    node = next(n for n in problem.nodes if n.id == device.node)
    labels = {**node.labels, **device.labels}
    return (
        device.state == "available"
        and node.status == "ready"
        and all(labels.get(k) == v for k, v in request.selector.items())
        and (request.android_version is None or request.android_version == device.android_version)
        and all(t.is_tolerated_by(request.tolerations) for t in node.taints)
        and all(have >= want for have, want in zip(device.capacity, request.minimum, strict=True))
    )


def brute_force_optimum(
    problem: PlacementProblem, strategy: Strategy, *, anti_affinity: bool = True
) -> int:
    """The best objective over every assignment (each request: one feasible device or none).

    Scores come from the strategy's own tables (per-pair edge score, per node and slot node
    term); everything else (feasibility, one request per device, anti-affinity, the sum) is
    computed here independently of the solvers.
    """
    compiled = compile_problem(problem)
    model = score_model(compiled.fleet, strategy)
    requests, devices = problem.requests, problem.devices
    n_requests, n_nodes = len(requests), compiled.fleet.num_nodes
    node_of = [int(n) for n in compiled.fleet.device_node]
    unit = weight_unit(n_requests)
    options: list[list[tuple[int, int]]] = []  # per request: (device, gain without node term)
    for r, request in enumerate(requests):
        row: list[tuple[int, int]] = []
        for d, device in enumerate(devices):
            if feasible(problem, request, device):
                edge = int(model.edge_scores(compiled.request_minimum[r], np.asarray([d]))[0])
                row.append((d, request.priority * unit + edge))
        options.append(row)
    reward = [
        [0] + [int(model.node_reward(np.asarray([n]), j)[0]) for j in range(1, len(devices) + 1)]
        for n in range(n_nodes)
    ]
    groups = [r.group_key if anti_affinity else None for r in requests]
    best = 0
    used: set[int] = set()
    counts = [0] * n_nodes
    group_nodes: set[tuple[object, int]] = set()

    def search(r: int, value: int) -> None:
        nonlocal best
        if r == n_requests:
            best = max(best, value)
            return
        search(r + 1, value)
        for device, gain in options[r]:
            node = node_of[device]
            key = (groups[r], node)
            if device in used or (groups[r] is not None and key in group_nodes):
                continue
            used.add(device)
            counts[node] += 1
            if groups[r] is not None:
                group_nodes.add(key)
            search(r + 1, value + gain + reward[node][counts[node]])
            used.discard(device)
            counts[node] -= 1
            group_nodes.discard(key)

    search(0, 0)
    return best


def check_plan(problem: PlacementProblem, plan: PlacementPlan) -> None:
    """Every invariant of a plan: one request per device, feasibility (state, readiness,
    selectors, Android version, taints, resources), anti-affinity, every request accounted
    for once, never below greedy, and never above a proven bound."""
    requests = {r.id: r for r in problem.requests}
    devices = {d.id: d for d in problem.devices}
    assignments: Mapping[Hashable, Hashable] = plan.assignments
    assert len(set(assignments.values())) == len(assignments), "a device serves two requests"
    for request_id, device_id in assignments.items():
        assert feasible(problem, requests[request_id], devices[device_id]), (
            f"{request_id} cannot take {device_id}"
        )
    seen: set[tuple[object, Hashable]] = set()
    for request_id, device_id in assignments.items():
        key = requests[request_id].group_key
        if key is not None:
            node = devices[device_id].node
            assert (key, node) not in seen, f"anti-affinity group {key} twice on node {node}"
            seen.add((key, node))
    assert set(assignments) | set(plan.unplaced) == set(requests)
    assert not set(assignments) & set(plan.unplaced)
    assert plan.objective >= plan.greedy_objective
    if plan.best_bound is not None and plan.bound_is_global:
        assert plan.objective <= plan.best_bound


def random_fleet(
    requests: int, nodes: int, devices_per_node: int, seed: int, *, groups: bool = True
) -> PlacementProblem:
    """A deterministic mid-sized instance: labelled, partly tainted and leased nodes, and
    requests with selectors, tolerations, priorities and (when ``groups``) batches."""
    rng = np.random.default_rng(seed)
    node_list = [
        Node(
            f"n{n}",
            {"region": REGIONS[n % 2]},
            (GPU_TAINT,) if n % 5 == 4 else (),
            "cordoned" if n % 7 == 6 else "ready",
        )
        for n in range(nodes)
    ]
    device_list = [
        Device(
            f"n{n}-d{i}",
            f"n{n}",
            SIZES[int(rng.integers(3))],
            ANDROID[int(rng.integers(2))],
            {},
            "allocated" if rng.random() < 0.3 else "available",
        )
        for n in range(nodes)
        for i in range(devices_per_node)
    ]
    request_list = [
        Request(
            f"r{r}",
            SIZES[int(rng.integers(3))] if rng.random() < 0.7 else (0.0, 0.0, 0.0),
            ANDROID[int(rng.integers(2))] if rng.random() < 0.3 else None,
            {"region": REGIONS[int(rng.integers(2))]} if rng.random() < 0.5 else {},
            (Toleration("gpu"),) if rng.random() < 0.2 else (),
            int(rng.integers(1, 6)),
            f"t{r % 3}",
            f"batch{r // 4}" if groups and r % 3 else None,
        )
        for r in range(requests)
    ]
    return PlacementProblem(tuple(node_list), tuple(device_list), tuple(request_list))
