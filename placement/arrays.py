"""The fleet of a placement problem as numpy arrays: one row per device, one per node.

Every solver, strategy and explanation reads these arrays rather than the frozen records,
so the per-device work is vectorized once here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from placement.problem import (
    DEVICE_AVAILABLE,
    DEVICE_LEASED,
    DEVICE_RETIRED,
    NODE_READY,
    PlacementProblem,
    Taint,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
IndexArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class FleetArrays:
    """Devices and nodes of a problem as arrays (row ``i`` is ``problem.devices[i]``).

    Attributes:
        device_capacity: ``(D, 3)`` resources per device.
        device_node: ``(D,)`` row of each device's node in ``problem.nodes``.
        device_available: ``(D,)`` the device's state is ``available``.
        device_present: ``(D,)`` the device is not retired (whatever its state).
        device_android: ``(D,)`` code of its Android version in ``android_codes`` (-1: none).
        android_codes: Android version → code.
        label_index: ``(key, value)`` → sorted rows of the devices carrying that label, the
            node's labels merged under the device's own.
        node_taints: each node's taints, in node order.
        node_ready: ``(N,)`` the node's status is ``ready``.
        node_capacity: ``(N, 3)`` the node's resources (given, else the sum of its devices).
        node_load: ``(N, 3)`` resources of its leased devices.
        node_leased: ``(N,)`` number of its leased devices.
        node_devices: ``(N,)`` number of its devices that are not retired.
        node_mean_device: ``(N, 3)`` mean resources of those devices (0 without any).
        resource_scale: ``(3,)`` the largest device's resources (per column, at least 1e-9).
    """

    device_ids: tuple[Hashable, ...]
    node_ids: tuple[Hashable, ...]
    device_capacity: FloatArray
    device_node: IndexArray
    device_available: BoolArray
    device_present: BoolArray
    device_android: IntArray
    android_codes: dict[str, int]
    label_index: dict[tuple[str, str], IndexArray]
    node_taints: tuple[tuple[Taint, ...], ...]
    node_ready: BoolArray
    node_capacity: FloatArray
    node_load: FloatArray
    node_leased: IntArray
    node_devices: IntArray
    node_mean_device: FloatArray
    resource_scale: FloatArray

    @property
    def num_devices(self) -> int:
        """D."""
        return len(self.device_ids)

    @property
    def num_nodes(self) -> int:
        """N."""
        return len(self.node_ids)

    @property
    def assignable(self) -> BoolArray:
        """``(D,)`` available devices on ready nodes: the only ones a plan may use."""
        return self.device_available & self.node_ready[self.device_node]


def build_fleet_arrays(problem: PlacementProblem) -> FleetArrays:
    """Turn the problem's nodes and devices into :class:`FleetArrays`."""
    nodes, devices = problem.nodes, problem.devices
    node_row = {n.id: i for i, n in enumerate(nodes)}
    n_nodes, n_devices = len(nodes), len(devices)

    capacity = np.asarray([d.capacity for d in devices], dtype=np.float64).reshape(n_devices, 3)
    device_node = np.fromiter((node_row[d.node] for d in devices), dtype=np.intp, count=n_devices)
    states = [d.state for d in devices]
    available = np.fromiter(
        (s == DEVICE_AVAILABLE for s in states), dtype=np.bool_, count=n_devices
    )
    leased = np.fromiter((s == DEVICE_LEASED for s in states), dtype=np.bool_, count=n_devices)
    present = np.fromiter((s != DEVICE_RETIRED for s in states), dtype=np.bool_, count=n_devices)

    android_codes: dict[str, int] = {}
    android = np.fromiter(
        (
            -1
            if d.android_version is None
            else android_codes.setdefault(d.android_version, len(android_codes))
            for d in devices
        ),
        dtype=np.int64,
        count=n_devices,
    )

    rows_by_label: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, d in enumerate(devices):
        node_labels = nodes[device_node[i]].labels
        labels = {**node_labels, **d.labels} if d.labels else node_labels
        for item in labels.items():
            rows_by_label[item].append(i)
    label_index = {k: np.asarray(v, dtype=np.intp) for k, v in rows_by_label.items()}

    node_devices = np.bincount(device_node[present], minlength=n_nodes).astype(np.int64)
    node_leased = np.bincount(device_node[leased], minlength=n_nodes).astype(np.int64)
    node_load = _sum_by_node(capacity, device_node, leased, n_nodes)
    node_total = _sum_by_node(capacity, device_node, present, n_nodes)
    node_capacity = np.asarray(
        [n.capacity if n.capacity is not None else node_total[i] for i, n in enumerate(nodes)],
        dtype=np.float64,
    ).reshape(n_nodes, 3)
    mean_device = node_total / np.maximum(node_devices, 1)[:, None]
    scale = capacity.max(axis=0) if n_devices else np.ones(3)

    return FleetArrays(
        device_ids=tuple(d.id for d in devices),
        node_ids=tuple(n.id for n in nodes),
        device_capacity=capacity,
        device_node=device_node,
        device_available=available,
        device_present=present,
        device_android=android,
        android_codes=android_codes,
        label_index=label_index,
        node_taints=tuple(n.taints for n in nodes),
        node_ready=np.fromiter((n.status == NODE_READY for n in nodes), np.bool_, n_nodes),
        node_capacity=node_capacity,
        node_load=node_load,
        node_leased=node_leased,
        node_devices=node_devices,
        node_mean_device=mean_device,
        resource_scale=np.maximum(scale, 1e-9),
    )


def _sum_by_node(
    capacity: FloatArray, device_node: IndexArray, where: BoolArray, n_nodes: int
) -> FloatArray:
    total = np.zeros((n_nodes, 3))
    np.add.at(total, device_node[where], capacity[where])
    return total
