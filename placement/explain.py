"""Why each request got its device, and why each unplaced one got none, in words.

A placed request's explanation lists its device's score terms and the runner-up: the best
other feasible device, scored as if the request moved there with every other placement kept.
The node term of a plan depends on how many placements share a node; it is attributed slot
by slot, higher priority (then earlier submission) first, so the terms of all explanations
add up to the plan's score.

An unplaced request is explained by the filter that removed its last candidate devices
(``feasibility.filter_chain``), or, when it has feasible devices, by who holds them: other
requests of this plan, or its own anti-affinity group's nodes.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace

import numpy as np

from placement.arrays import BoolArray, FleetArrays, IndexArray, IntArray
from placement.compiled import CompiledProblem, RequestClass
from placement.feasibility import RESOURCE_BINDINGS, filter_chain
from placement.objective import UNPLACED, node_counts
from placement.plan import Binding, DeviceChoice, Explanation, Unplaced
from placement.problem import Request
from placement.strategies import ScoreModel

RESOURCE_WORDS = ("{:g} cores", "{:g} MB memory", "{:g} MB storage")


def node_slots(compiled: CompiledProblem, assignment: IndexArray) -> IntArray:
    """``(R,)`` the slot (1-based) each placed request holds on its node, 0 when unplaced."""
    slots = np.zeros(compiled.num_requests, dtype=np.int64)
    rows = np.flatnonzero(assignment >= 0)
    if len(rows) == 0:
        return slots
    nodes = compiled.fleet.device_node[assignment[rows]]
    order = np.lexsort((rows, -compiled.request_weight[rows], nodes))
    sorted_nodes = nodes[order]
    starts = np.r_[True, sorted_nodes[1:] != sorted_nodes[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    slots[rows[order]] = np.arange(len(order)) - group_start + 1
    return slots


def explain_placements(
    compiled: CompiledProblem,
    model: ScoreModel,
    class_scores: tuple[IntArray, ...],
    assignment: IndexArray,
) -> dict[Hashable, Explanation]:
    """An :class:`Explanation` per placed request."""
    fleet = compiled.fleet
    placed = np.flatnonzero(assignment >= 0)
    if len(placed) == 0:
        return {}
    holder = np.full(fleet.num_devices, UNPLACED, dtype=np.intp)
    holder[assignment[placed]] = placed
    next_reward = model.node_reward(
        np.arange(fleet.num_nodes), node_counts(compiled, assignment) + 1
    )
    devices = assignment[placed]
    node_values = model.node_reward(
        fleet.device_node[devices], node_slots(compiled, assignment)[placed]
    )
    position = {row: i for i, row in enumerate(placed.tolist())}
    runner_rows: list[int] = []
    runner_devices: list[int] = []
    runner_values: list[int] = []
    for c, scores in zip(compiled.classes, class_scores, strict=True):
        rows = c.members[assignment[c.members] >= 0]
        if len(rows) == 0:
            continue
        alternatives = _Alternatives(fleet, c, scores, next_reward)
        for row in rows.tolist():
            device = int(assignment[row])
            node_value = int(node_values[position[row]])
            runner = alternatives.runner_up(device, int(fleet.device_node[device]), node_value)
            if runner is not None:
                runner_rows.append(row)
                runner_devices.append(runner[0])
                runner_values.append(runner[1])
    chosen = _choices(compiled, model, placed, devices, node_values)
    runners = _choices(
        compiled,
        model,
        np.asarray(runner_rows, dtype=np.intp),
        np.asarray(runner_devices, dtype=np.intp),
        np.asarray(runner_values, dtype=np.int64),
    )
    requests = compiled.problem.requests
    runner_up: dict[int, tuple[DeviceChoice, Hashable | None]] = {}
    for row, device, choice in zip(runner_rows, runner_devices, runners, strict=True):
        taker = int(holder[device])
        runner_up[row] = (choice, requests[taker].id if taker >= 0 else None)
    explanations: dict[Hashable, Explanation] = {}
    for row, choice in zip(placed.tolist(), chosen, strict=True):
        other, taken_by = runner_up.get(row, (None, None))
        explanations[requests[row].id] = Explanation(requests[row].id, choice, other, taken_by)
    return explanations


def explain_unplaced(compiled: CompiledProblem, assignment: IndexArray) -> dict[Hashable, Unplaced]:
    """An :class:`Unplaced` per request without a device in ``assignment``."""
    fleet = compiled.fleet
    requests = compiled.problem.requests
    taken = np.zeros(fleet.num_devices, dtype=np.bool_)
    holder = np.full(fleet.num_devices, UNPLACED, dtype=np.intp)
    placed = np.flatnonzero(assignment >= 0)
    taken[assignment[placed]] = True
    holder[assignment[placed]] = placed
    static: dict[int, Unplaced] = {}
    reasons: dict[Hashable, Unplaced] = {}
    for row in np.flatnonzero(assignment < 0).tolist():
        request = requests[row]
        c = int(compiled.request_class[row])
        feasible = compiled.classes[c].feasible
        if len(feasible) == 0:
            if c not in static:
                never = why_unsatisfiable(fleet, request)
                binding, reason = never or why_infeasible(fleet, request)
                static[c] = Unplaced(request.id, binding, reason, never is not None)
            reasons[request.id] = replace(static[c], request_id=request.id)
            continue
        free = feasible[~taken[feasible]]
        if len(free) == 0:
            reason = _taken_reason(compiled, row, holder[feasible])
            reasons[request.id] = Unplaced(request.id, Binding.TAKEN, reason)
            continue
        group = compiled.request_group[row]
        if group >= 0:
            reason = (
                f"the {len(free)} free matching devices are all on nodes that already hold a"
                f" device of its anti-affinity group {request.anti_affinity_group!r}"
            )
            reasons[request.id] = Unplaced(request.id, Binding.ANTI_AFFINITY, reason)
            continue
        # Not reached for solve()'s plans (its fill places such a request); kept so any
        # assignment gets an explanation.
        reasons[request.id] = Unplaced(
            request.id,
            Binding.TAKEN,
            f"left unplaced by the solver although {len(free)} matching devices are free",
        )
    return reasons


def why_infeasible(fleet: FleetArrays, request: Request) -> tuple[Binding, str]:
    """The filter that removes the request's last available device, and the sentence saying
    so.

    Raises:
        ValueError: the request has feasible devices.
    """
    chain = filter_chain(fleet, request)
    found = _first_empty(chain, fleet.assignable)
    if found is None:
        raise ValueError(f"request {request.id!r} has feasible devices")
    binding, before = found
    selector, with_label, android = _phrases(request)
    if binding is Binding.NO_READY_DEVICE:
        if not fleet.node_ready.any():
            return binding, "no node is ready"
        return binding, "no ready node has an available device"
    if binding is Binding.LABEL_SELECTOR:
        return binding, f"no ready node has an available device with label {selector}"
    if binding is Binding.ANDROID_VERSION:
        return binding, f"no ready node{with_label} has an available device{android}"
    if binding is Binding.TAINTS:
        taints = _untolerated(fleet, before, request)
        return binding, (
            f"every ready node{with_label} with an available device{android} has a taint"
            f" the request does not tolerate ({taints})"
        )
    masks = dict(chain)
    tainted_out = bool((masks[Binding.ANDROID_VERSION] & ~masks[Binding.TAINTS]).any())
    node = ("tolerated " if tainted_out else "") + f"ready node{with_label}"
    wanted, largest = _shortfall(fleet, request, binding, before)
    return binding, (
        f"no {node} has a device{android} with {wanted} free (the largest there has {largest})"
    )


def why_unsatisfiable(fleet: FleetArrays, request: Request) -> tuple[Binding, str] | None:
    """The constraint that no device of the whole fleet meets, whatever its state or its
    node's, with the best the fleet offers in words; ``None`` when some device could serve
    the request once it is free."""
    found = _first_empty(filter_chain(fleet, request, whole_fleet=True), fleet.device_present)
    if found is None:
        return None
    binding, before = found
    _, with_label, android = _phrases(request)
    if binding is Binding.NO_READY_DEVICE:
        return binding, "the fleet has no devices"
    if binding is Binding.LABEL_SELECTOR:
        return binding, _missing_label(fleet, request)
    if binding is Binding.ANDROID_VERSION:
        codes = set(fleet.device_android[before].tolist())
        versions = sorted(v for v, code in fleet.android_codes.items() if code in codes)
        return binding, (
            f"no device{with_label} runs Android {request.android_version}"
            f" (the fleet{with_label} has {', '.join(versions) or 'none'})"
        )
    if binding is Binding.TAINTS:
        return binding, (
            f"every device{with_label}{android} is on a node with a taint the request does"
            f" not tolerate ({_untolerated(fleet, before, request)})"
        )
    wanted, largest = _shortfall(fleet, request, binding, before)
    return binding, f"no device{with_label}{android} has {wanted}; the largest has {largest}"


def _first_empty(
    chain: list[tuple[Binding, BoolArray]], start: BoolArray
) -> tuple[Binding, BoolArray] | None:
    """The first filter that leaves no device, and the devices standing before it."""
    position = next((i for i, (_, mask) in enumerate(chain) if not mask.any()), None)
    if position is None:
        return None
    return chain[position][0], chain[position - 1][1] if position else start


def _phrases(request: Request) -> tuple[str, str, str]:
    """The request's selector, and how sentences name its labels and Android version."""
    selector = ", ".join(f"{k}={v}" for k, v in sorted(request.selector.items()))
    with_label = f" with label {selector}" if selector else ""
    android = f" running Android {request.android_version}" if request.android_version else ""
    return selector, with_label, android


def _shortfall(
    fleet: FleetArrays, request: Request, binding: Binding, before: BoolArray
) -> tuple[str, str]:
    """What the request wants up to the resource that binds, and the largest there is."""
    column = RESOURCE_BINDINGS.index(binding)
    wanted = [
        "≥ " + RESOURCE_WORDS[k].format(request.minimum[k])
        for k in range(column + 1)
        if request.minimum[k] > 0
    ]
    largest = RESOURCE_WORDS[column].format(float(fleet.device_capacity[before, column].max()))
    return " and ".join(wanted), largest


def _missing_label(fleet: FleetArrays, request: Request) -> str:
    """Which selector label no device carries, and what the fleet has under that key."""
    present = fleet.device_present

    def carried(item: tuple[str, str]) -> bool:
        rows = fleet.label_index.get(item)
        return rows is not None and bool(present[rows].any())

    for key, value in sorted(request.selector.items()):
        if carried((key, value)):
            continue
        offered = sorted(v for k, v in fleet.label_index if k == key and carried((k, v)))
        has = f"{key} is one of: {', '.join(offered[:10])}" if offered else f"none has {key}"
        return f"no device has label {key}={value} ({has})"
    together = ", ".join(f"{k}={v}" for k, v in sorted(request.selector.items()))
    return f"no device has the labels {together} together"


class _Alternatives:
    """Per request class: the best devices per node, to find runner-ups in O(1) each."""

    def __init__(
        self, fleet: FleetArrays, c: RequestClass, scores: IntArray, next_reward: IntArray
    ) -> None:
        nodes = fleet.device_node[c.feasible]
        order = np.lexsort((-scores, nodes))
        sorted_nodes = nodes[order]
        starts = np.flatnonzero(np.r_[True, sorted_nodes[1:] != sorted_nodes[:-1]])
        ends = np.r_[starts[1:], len(order)]
        self._feasible = c.feasible
        self._scores = scores
        self._first: dict[int, int] = {}
        self._second: dict[int, int] = {}
        node_best = np.empty(len(starts), dtype=np.int64)
        for i, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            node = int(sorted_nodes[start])
            self._first[node] = int(order[start])
            if end - start > 1:
                self._second[node] = int(order[start + 1])
            node_best[i] = scores[order[start]] + next_reward[node]
        top = np.argsort(-node_best, kind="stable")[:2]
        self._top_nodes = [(int(sorted_nodes[starts[i]]), int(node_best[i])) for i in top.tolist()]

    def runner_up(self, device: int, node: int, node_value: int) -> tuple[int, int] | None:
        """The best other device (row) and its node term, if the class has one."""
        best: tuple[int, int, int] | None = None  # (total, device, node term)
        for other_node, total in self._top_nodes:
            if other_node != node:
                first = self._first[other_node]
                node_term = total - int(self._scores[first])
                best = (total, int(self._feasible[first]), node_term)
                break
        same = self._first.get(node)
        if same is not None and self._feasible[same] == device:
            same = self._second.get(node)
        if same is not None:
            total = int(self._scores[same]) + node_value
            if best is None or total > best[0]:
                best = (total, int(self._feasible[same]), node_value)
        return None if best is None else (best[1], best[2])


def _choices(
    compiled: CompiledProblem,
    model: ScoreModel,
    rows: IndexArray,
    devices: IndexArray,
    node_values: IntArray,
) -> list[DeviceChoice]:
    """A :class:`DeviceChoice` per (request row, device row, node term), terms vectorized."""
    if len(rows) == 0:
        return []
    fleet = compiled.fleet
    terms = model.edge_terms(compiled.request_minimum[rows], devices)
    names = [name for name, _ in terms] + [model.node_term]
    table = np.column_stack([values for _, values in terms] + [node_values]).tolist()
    device_ids, node_ids = fleet.device_ids, fleet.node_ids
    nodes = fleet.device_node[devices].tolist()
    return [
        DeviceChoice(
            device_ids[device],
            node_ids[node],
            sum(values),
            tuple(zip(names, values, strict=True)),
        )
        for device, node, values in zip(devices.tolist(), nodes, table, strict=True)
    ]


def _taken_reason(compiled: CompiledProblem, row: int, holders: IndexArray) -> str:
    weight = int(compiled.request_weight[row])
    weights = compiled.request_weight[holders]
    single = len(holders) == 1
    subject = (
        "the only matching device is" if single else f"all {len(holders)} matching devices are"
    )
    article = "a " if single else ""
    plural = "" if single else "s"
    if bool((weights > weight).all()):
        return f"{subject} taken by {article}higher-priority request{plural} in this plan"
    if bool((weights >= weight).all()):
        return (
            f"{subject} taken by {article}request{plural} of equal or higher priority in this plan"
        )
    lower = int((weights < weight).sum())
    return (
        f"{subject} taken by other requests in this plan ({lower} of lower priority, kept"
        " because moving them would break anti-affinity or place less priority weight)"
    )


def _untolerated(fleet: FleetArrays, before: BoolArray, request: Request) -> str:
    nodes = np.unique(fleet.device_node[before])
    taints = sorted(
        {
            t.describe()
            for n in nodes.tolist()
            for t in fleet.node_taints[n]
            if not t.is_tolerated_by(request.tolerations)
        }
    )
    shown = ", ".join(taints[:3])
    return shown + (f" and {len(taints) - 3} more" if len(taints) > 3 else "")
