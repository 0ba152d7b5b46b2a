"""A placement problem compiled for the solvers: fleet arrays, request classes, device types.

Requests that ask for the same thing (minimum, Android version, selector, tolerations) form a
*class*: they have the same feasible devices and the same edge scores, so both are computed
once per class. Fleets have few distinct asks, which keeps compilation near O(classes × D).

Assignable devices that no request or strategy can tell apart (same node, resources, Android
version and labels) form a *type*. A model over (request, type) pairs with a capacity per
type is exactly the model over devices, with about a quarter of the pairs and none of the
symmetry between identical devices.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from placement.arrays import (
    BoolArray,
    FleetArrays,
    FloatArray,
    IndexArray,
    IntArray,
    build_fleet_arrays,
)
from placement.feasibility import feasible_mask, tolerated_nodes
from placement.problem import PlacementProblem, Request, Toleration


@dataclass(frozen=True, eq=False)
class RequestClass:
    """Requests with one ask.

    Attributes:
        representative: row of the first such request.
        members: rows of all of them, in submission order.
        feasible: rows of the devices they may take, ascending.
        feasible_types: the types of those devices, ascending.
    """

    representative: int
    members: IndexArray
    feasible: IndexArray
    feasible_types: IndexArray


@dataclass(frozen=True, eq=False)
class CompiledProblem:
    """Arrays over the requests (row ``r`` is ``problem.requests[r]``) and the fleet.

    Attributes:
        request_minimum: ``(R, 3)`` minimum resources per request.
        request_weight: ``(R,)`` priority per request.
        request_class: ``(R,)`` index of its class in ``classes``.
        request_group: ``(R,)`` index of its anti-affinity group, or -1 when it has none or is
            its group's only member (a group of one constrains nothing).
        device_type: ``(D,)`` type of each assignable device, -1 for the others.
        type_devices: per type, its device rows, ascending (the first is its representative).
        type_node: ``(T,)`` node row of each type.
        type_count: ``(T,)`` number of devices of each type.
    """

    problem: PlacementProblem
    fleet: FleetArrays
    request_minimum: FloatArray
    request_weight: IntArray
    request_class: IndexArray
    request_group: IndexArray
    classes: tuple[RequestClass, ...]
    num_groups: int
    device_type: IndexArray
    type_devices: tuple[IndexArray, ...]
    type_node: IndexArray
    type_count: IntArray

    @property
    def num_requests(self) -> int:
        """R."""
        return len(self.problem.requests)

    @property
    def request_ids(self) -> tuple[Hashable, ...]:
        """Request ids by row."""
        return tuple(r.id for r in self.problem.requests)

    @property
    def num_types(self) -> int:
        """T, the number of device types."""
        return len(self.type_devices)

    @property
    def type_representative(self) -> IndexArray:
        """``(T,)`` the first device row of each type."""
        return np.asarray([rows[0] for rows in self.type_devices], dtype=np.intp)

    @property
    def has_anti_affinity(self) -> bool:
        """Some group has two or more requests."""
        return self.num_groups > 0

    def feasible_edge_count(self) -> int:
        """Number of (request, feasible device) pairs."""
        return sum(len(c.members) * len(c.feasible) for c in self.classes)

    def feasible_type_pair_count(self) -> int:
        """Number of (request, feasible device type) pairs."""
        return sum(len(c.members) * len(c.feasible_types) for c in self.classes)


def compile_problem(problem: PlacementProblem) -> CompiledProblem:
    """Build the fleet arrays, group requests into classes and find each class's devices."""
    fleet = build_fleet_arrays(problem)
    requests = problem.requests
    n_requests = len(requests)
    device_type, type_devices = _device_types(problem, fleet)

    class_rows: dict[tuple[object, ...], list[int]] = {}
    for row, request in enumerate(requests):
        class_rows.setdefault(_ask(request), []).append(row)
    classes: list[RequestClass] = []
    request_class = np.zeros(n_requests, dtype=np.intp)
    tolerated: dict[tuple[Toleration, ...], BoolArray] = {}
    for index, rows in enumerate(class_rows.values()):
        request_class[rows] = index
        ask = requests[rows[0]]
        if ask.tolerations not in tolerated:
            tolerated[ask.tolerations] = tolerated_nodes(fleet, ask.tolerations)
        mask = feasible_mask(fleet, ask, tolerated[ask.tolerations])
        feasible = np.flatnonzero(mask).astype(np.intp)
        types = np.unique(device_type[feasible]).astype(np.intp)
        classes.append(RequestClass(rows[0], np.asarray(rows, dtype=np.intp), feasible, types))

    members: dict[tuple[str, str], list[int]] = {}
    for row, request in enumerate(requests):
        key = request.group_key
        if key is not None:
            members.setdefault(key, []).append(row)
    request_group = np.full(n_requests, -1, dtype=np.intp)
    groups = [rows for rows in members.values() if len(rows) > 1]
    for index, rows in enumerate(groups):
        request_group[rows] = index

    return CompiledProblem(
        problem=problem,
        fleet=fleet,
        request_minimum=np.asarray([r.minimum for r in requests], dtype=np.float64).reshape(
            n_requests, 3
        ),
        request_weight=np.asarray([r.priority for r in requests], dtype=np.int64),
        request_class=request_class,
        request_group=request_group,
        classes=tuple(classes),
        num_groups=len(groups),
        device_type=device_type,
        type_devices=type_devices,
        type_node=np.asarray([fleet.device_node[rows[0]] for rows in type_devices], dtype=np.intp),
        type_count=np.asarray([len(rows) for rows in type_devices], dtype=np.int64),
    )


def _device_types(
    problem: PlacementProblem, fleet: FleetArrays
) -> tuple[IndexArray, tuple[IndexArray, ...]]:
    """Group assignable devices by (node, resources, Android version, own labels)."""
    device_type = np.full(fleet.num_devices, -1, dtype=np.intp)
    rows_by_key: dict[tuple[object, ...], list[int]] = {}
    for row in np.flatnonzero(fleet.assignable).tolist():
        device = problem.devices[row]
        key = (
            int(fleet.device_node[row]),
            tuple(device.capacity),
            device.android_version,
            tuple(sorted(device.labels.items())),
        )
        rows_by_key.setdefault(key, []).append(row)
    for index, rows in enumerate(rows_by_key.values()):
        device_type[rows] = index
    return device_type, tuple(np.asarray(rows, dtype=np.intp) for rows in rows_by_key.values())


def _ask(request: Request) -> tuple[object, ...]:
    return (
        tuple(request.minimum),
        request.android_version,
        tuple(sorted(request.selector.items())),
        tuple(sorted(request.tolerations, key=lambda t: (t.key, t.value or ""))),
    )
