"""Bodies of nodes and devices."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field, RootModel

from scheduler.domain import limits
from scheduler.domain.fleet import Device, Node
from scheduler.domain.resources import Resources, Taint
from scheduler.domain.usage_stats import NodeTotals
from scheduler.services.commands import (
    AddDevices,
    RegisterNode,
)
from scheduler.services.device_health import DeviceReported
from scheduler.services.statistics import region_of, zone_of
from serve.schemas.base import (
    Body,
    Labels,
    LabelsField,
    Name,
    Out,
)
from serve.schemas.stats import UsageOut, node_usage


class ResourcesIn(Body):
    cpuCores: float = Field(gt=0, le=limits.MAX_DEVICE_CPU_CORES)
    memoryMB: int = Field(gt=0, le=limits.MAX_DEVICE_MEMORY_MB)
    storageMB: int = Field(gt=0, le=limits.MAX_DEVICE_STORAGE_MB)

    def resources(self) -> Resources:
        return Resources(self.cpuCores, self.memoryMB, self.storageMB)


class NodeCapacityIn(ResourcesIn):
    maxDevices: int = Field(gt=0, le=limits.MAX_NODE_DEVICES)


class TaintIn(Body):
    key: str = Field(min_length=1, max_length=128)
    value: str = Field(default="", max_length=128)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


AllocationRate = Field(default=1.0, ge=1, le=16)


class NodeIn(Body):
    name: str = Name
    capacity: NodeCapacityIn
    labels: Labels = LabelsField
    taints: list[TaintIn] = Field(default_factory=list, max_length=64)
    host: str | None = Field(default=None, max_length=253)
    #: The port the host's agent listens on (the platform's console shows it).
    port: int | None = Field(default=None, ge=1, le=65535)
    #: Overcommit: its devices may together ask for this many times its cores and memory.
    cpuAllocationRate: float = AllocationRate
    memoryAllocationRate: float = AllocationRate

    def to_command(self) -> RegisterNode:
        return RegisterNode(
            self.name,
            self.capacity.resources(),
            self.capacity.maxDevices,
            dict(self.labels),
            tuple(Taint(t.key, t.value, t.effect) for t in self.taints),
            self.host,
            self.port,
            self.cpuAllocationRate,
            self.memoryAllocationRate,
        )


class NodeCapacityOut(Out):
    cpuCores: float
    memoryMB: int
    storageMB: int
    maxDevices: int


class DrainOut(Out):
    """A drain under way: its mode, deadline, and the leases still on the node."""

    mode: str
    deadline: datetime | None
    removeWhenDrained: bool
    leasesLeft: int


class NodeOut(Out):
    id: uuid.UUID
    name: str
    status: str
    capacity: NodeCapacityOut
    labels: dict[str, str]
    taints: list[dict[str, str]]
    host: str
    port: int | None = None
    cpuAllocationRate: float = 1.0
    memoryAllocationRate: float = 1.0
    createdAt: datetime
    lastHeartbeatAt: datetime | None
    devices: dict[str, int] = Field(default_factory=dict)
    #: What the node's active leases hold.
    usage: UsageOut = Field(default_factory=lambda: node_usage(None))
    region: str | None = None
    zone: str | None = None
    statusReason: str | None = None
    drain: DrainOut | None = None

    @classmethod
    def of(
        cls, n: Node, devices: dict[str, int] | None = None, totals: NodeTotals | None = None
    ) -> NodeOut:
        r = n.capacity.resources
        return cls(
            id=n.id,
            name=n.name,
            status=n.status.value,
            usage=node_usage(totals),
            statusReason=n.status_reason,
            drain=DrainOut(
                mode=n.drain.mode.value,
                deadline=n.drain.deadline,
                removeWhenDrained=n.drain.remove_when_drained,
                leasesLeft=totals.leased_devices if totals else 0,
            )
            if n.drain
            else None,
            region=region_of(n.labels),
            zone=zone_of(n.labels),
            labels=n.labels,
            host=n.host,
            port=n.port,
            cpuAllocationRate=n.capacity.cpu_allocation_rate,
            memoryAllocationRate=n.capacity.memory_allocation_rate,
            capacity=NodeCapacityOut(
                cpuCores=r.cpu_cores,
                memoryMB=r.memory_mb,
                storageMB=r.storage_mb,
                maxDevices=n.capacity.max_devices,
            ),
            taints=[{"key": t.key, "value": t.value, "effect": t.effect} for t in n.taints],
            createdAt=n.created_at,
            lastHeartbeatAt=n.last_heartbeat_at,
            devices=devices or {},
        )


class DeviceSpecIn(ResourcesIn):
    androidVersion: str = Field(min_length=1, max_length=limits.MAX_ANDROID_VERSION)


class AddDevicesIn(Body):
    count: int = Field(ge=1, le=1000)
    spec: DeviceSpecIn
    labels: Labels = LabelsField

    def to_command(self, node_id: uuid.UUID) -> AddDevices:
        return AddDevices(
            node_id, self.count, self.spec.resources(), self.spec.androidVersion, dict(self.labels)
        )


class DeviceSpecOut(Out):
    cpuCores: float
    memoryMB: int
    storageMB: int
    androidVersion: str


class DeviceOut(Out):
    id: uuid.UUID
    name: str
    status: str
    nodeId: uuid.UUID
    spec: DeviceSpecOut
    labels: dict[str, str]
    adbHost: str
    adbPort: int

    @classmethod
    def of(cls, d: Device) -> DeviceOut:
        r = d.spec.resources
        return cls(
            id=d.id,
            name=d.name,
            status=d.status.value,
            nodeId=d.node_id,
            labels=d.spec.labels,
            spec=DeviceSpecOut(
                cpuCores=r.cpu_cores,
                memoryMB=r.memory_mb,
                storageMB=r.storage_mb,
                androidVersion=d.spec.android_version,
            ),
            adbHost=d.adb_host,
            adbPort=d.adb_port,
        )


class DeviceList(RootModel[list[DeviceOut]]):
    """A plain JSON list of devices."""


class DevicePage(Out):
    items: list[DeviceOut]
    total: int
    nextCursor: str | None


class DeviceReportIn(Body):
    status: Literal["failed", "recovered"]
    reason: str = Field(default="", max_length=500)


class RelocationOut(Out):
    allocationId: uuid.UUID
    outcome: Literal["moved", "revoked"]
    movedTo: uuid.UUID | None


class DeviceReportOut(Out):
    """The device's status after the report, and what became of its lease."""

    deviceId: uuid.UUID
    status: str
    leases: list[RelocationOut]

    @classmethod
    def of(cls, r: DeviceReported) -> DeviceReportOut:
        return cls(
            deviceId=r.device_id,
            status=r.status,
            leases=[
                RelocationOut(
                    allocationId=m.allocation_id,
                    outcome="moved" if m.moved_to else "revoked",
                    movedTo=m.moved_to,
                )
                for m in r.leases
            ],
        )


class SimulateIn(Body):
    """``fail``: a device's resets fail and it is reported failed; a node stops its
    heartbeats. ``recover`` undoes it."""

    action: Literal["fail", "recover"]
