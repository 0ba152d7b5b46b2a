"""Nodes and the devices on them: states, capacity checks and ADB endpoints."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from scheduler.domain.errors import NodeCapacityExceeded
from scheduler.domain.resources import Resources, Taint


class NodeStatus(StrEnum):
    READY = "ready"
    CORDONED = "cordoned"
    DRAINING = "draining"
    DRAINED = "drained"
    MAINTENANCE = "maintenance"
    OFFLINE = "offline"
    REMOVED = "removed"


class DeviceStatus(StrEnum):
    PROVISIONING = "provisioning"
    AVAILABLE = "available"
    ALLOCATED = "allocated"
    RESETTING = "resetting"
    MAINTENANCE = "maintenance"
    FAILED = "failed"
    RETIRED = "retired"


#: Devices that still occupy their node's capacity.
OCCUPYING_STATUSES = tuple(s.value for s in DeviceStatus if s is not DeviceStatus.RETIRED)

ADB_BASE_PORT = 20000


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    resources: Resources
    max_devices: int
    #: Overcommit, as Anbox Cloud has it: the devices on the node may together ask for this
    #: many times its cores and its memory (storage is never overcommitted).
    cpu_allocation_rate: float = 1.0
    memory_allocation_rate: float = 1.0

    @property
    def allocatable(self) -> Resources:
        """What the node's devices may ask for together."""
        r = self.resources
        return Resources(
            r.cpu_cores * self.cpu_allocation_rate,
            int(r.memory_mb * self.memory_allocation_rate),
            r.storage_mb,
        )


@dataclass(frozen=True, slots=True)
class Node:
    id: uuid.UUID
    name: str
    capacity: NodeCapacity
    labels: dict[str, str]
    taints: tuple[Taint, ...]
    status: NodeStatus
    host: str
    created_at: datetime
    last_heartbeat_at: datetime | None = None
    #: Why it is in maintenance, draining or removed (as the admin said).
    status_reason: str | None = None
    drain: Drain | None = None
    #: The port its host agent listens on, as the platform registered it (none: not said).
    port: int | None = None


class DrainMode(StrEnum):
    #: Leases run to their end; what is left at the deadline is moved.
    WAIT = "wait"
    #: Every lease is moved now.
    MIGRATE = "migrate"


@dataclass(frozen=True, slots=True)
class Drain:
    mode: DrainMode
    deadline: datetime | None
    remove_when_drained: bool = False


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    resources: Resources
    android_version: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Device:
    id: uuid.UUID
    node_id: uuid.UUID
    name: str
    status: DeviceStatus
    spec: DeviceSpec
    adb_host: str
    adb_port: int
    created_at: datetime


def check_node_room(
    capacity: NodeCapacity, used: Resources, used_devices: int, adding: Resources, count: int
) -> None:
    """Raises:
    NodeCapacityExceeded: the node cannot hold ``count`` more devices of that size.
    """
    if used_devices + count > capacity.max_devices:
        raise NodeCapacityExceeded(
            f"node holds {used_devices} of {capacity.max_devices} devices; cannot add {count}"
        )
    total = used + Resources(
        adding.cpu_cores * count, adding.memory_mb * count, adding.storage_mb * count
    )
    if not total.fits_within(capacity.allocatable):
        raise NodeCapacityExceeded(
            f"node capacity {capacity.allocatable} (overcommit included) cannot hold {count}"
            f" more devices of {adding}"
        )
