"""The placement problem: nodes, devices and requests as frozen values, and the strategy.

A device is leased whole, so a placement problem is a matching: each request takes at most
one device, each device serves at most one request. Services translate their aggregates into
these values (ids are opaque hashables, statuses are the domain's status strings), so the
solvers never see ORM or domain objects and everything here pickles across Ray.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

#: A resource vector in ``placement.model.RESOURCE_COLUMNS`` order: cores, memory MB, storage MB.
Vector = tuple[float, float, float]

#: The only node status that takes new leases.
NODE_READY = "ready"
#: The only device state that can be leased.
DEVICE_AVAILABLE = "available"
#: The device state of a leased device (it loads its node for every strategy).
DEVICE_LEASED = "allocated"
#: A retired device no longer occupies its node.
DEVICE_RETIRED = "retired"

#: Priorities are weights in ``[1, MAX_PRIORITY]`` (bounded so integer objectives never overflow).
MAX_PRIORITY = 1000

#: Taint effects that forbid placement unless tolerated (``PreferNoSchedule`` only discourages).
BLOCKING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


class InvalidProblem(ValueError):
    """The placement problem is inconsistent (duplicate ids, unknown node, bad priority)."""


class Strategy(StrEnum):
    """How to choose among feasible devices; the math is in ``placement.strategies``."""

    BINPACK = "binpack"
    SPREAD = "spread"
    BALANCED = "balanced"
    LEAST_LOADED = "least_loaded"


@dataclass(frozen=True, slots=True)
class Toleration:
    """Allows placement on nodes carrying a taint with this key (and value, if given)."""

    key: str
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Taint:
    """A node taint: its devices are skipped unless the request tolerates it."""

    key: str
    value: str = ""
    effect: str = "NoSchedule"

    def is_tolerated_by(self, tolerations: tuple[Toleration, ...]) -> bool:
        """Whether placement is allowed on a node with this taint (the domain's rule)."""
        if self.effect not in BLOCKING_EFFECTS:
            return True
        return any(t.key == self.key and t.value in (None, self.value) for t in tolerations)

    def describe(self) -> str:
        """``key=value:Effect``, as explanations print it."""
        return (
            f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"
        )


@dataclass(frozen=True, slots=True)
class Node:
    """A host of devices.

    Attributes:
        id: the node's id.
        labels: node labels; a device's own labels override them for selectors.
        taints: taints that exclude requests which do not tolerate them.
        status: the domain's node status; only ``"ready"`` nodes take leases.
        capacity: the node's resources; ``None`` means the sum of its devices in the problem.
    """

    id: Hashable
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    status: str = NODE_READY
    capacity: Vector | None = None


@dataclass(frozen=True, slots=True)
class Device:
    """One phone on a node.

    Attributes:
        id: the device's id.
        node: the id of its node.
        capacity: its resources (a lease takes all of them).
        android_version: the Android version it runs.
        labels: device labels (over the node's labels).
        state: the domain's device status; ``"available"`` can be leased, ``"allocated"``
            counts as load on its node, every state but ``"retired"`` occupies the node.
    """

    id: Hashable
    node: Hashable
    capacity: Vector
    android_version: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    state: str = DEVICE_AVAILABLE


@dataclass(frozen=True, slots=True)
class Request:
    """A request for one device.

    Attributes:
        id: the request's id (an allocation, a queue entry, a batch member).
        minimum: the least resources the device must have.
        android_version: the exact Android version asked for, if any.
        selector: labels the device (or its node) must carry.
        tolerations: taints the request accepts.
        priority: a weight in ``[1, MAX_PRIORITY]``; the optimizer maximizes the sum of the priorities of the
            placed requests first (so one priority-4 request outweighs three priority-1 ones).
        tenant: the request's tenant; anti-affinity groups are scoped by it.
        anti_affinity_group: requests of one tenant sharing this group (one user's batch) get
            devices on distinct nodes.
    """

    id: Hashable
    minimum: Vector = (0.0, 0.0, 0.0)
    android_version: str | None = None
    selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    priority: int = 1
    tenant: str = ""
    anti_affinity_group: str | None = None

    @property
    def group_key(self) -> tuple[str, str] | None:
        """The anti-affinity group, scoped by tenant (``None`` when the request has none)."""
        if self.anti_affinity_group is None:
            return None
        return (self.tenant, self.anti_affinity_group)


@dataclass(frozen=True)
class PlacementProblem:
    """Everything one ``solve`` call decides over.

    Devices that are not available (leased, resetting, …) may be listed too: they cannot be
    chosen, but they load their node, which the strategies read. A request's order in
    ``requests`` is its submission order (ties between equal priorities go to the earlier).

    Raises:
        InvalidProblem: duplicate ids, a device on an unknown node, or a priority out of range.
    """

    nodes: tuple[Node, ...]
    devices: tuple[Device, ...]
    requests: tuple[Request, ...]

    def __post_init__(self) -> None:
        node_ids = {n.id for n in self.nodes}
        if len(node_ids) != len(self.nodes):
            raise InvalidProblem("two nodes share an id")
        if len({d.id for d in self.devices}) != len(self.devices):
            raise InvalidProblem("two devices share an id")
        if len({r.id for r in self.requests}) != len(self.requests):
            raise InvalidProblem("two requests share an id")
        for device in self.devices:
            if device.node not in node_ids:
                raise InvalidProblem(f"device {device.id!r} is on unknown node {device.node!r}")
        for request in self.requests:
            if not 1 <= request.priority <= MAX_PRIORITY:
                raise InvalidProblem(
                    f"request {request.id!r} has priority {request.priority},"
                    f" outside [1, {MAX_PRIORITY}]"
                )
