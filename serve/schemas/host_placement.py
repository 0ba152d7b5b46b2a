"""New devices on hosts: where one would go (``POST /scheduler/nodes/placement``), and
provisioning many (``POST /scheduler/devices/provision``)."""

from __future__ import annotations

import uuid

from pydantic import Field

from placement.host_choice import HostChoice
from placement.problem import Strategy
from scheduler.domain import limits
from scheduler.domain.resources import Resources, Toleration
from scheduler.services.commands import ProvisionDevices, ProvisionedDevices
from scheduler.services.host_placement import HostPlacementQuery
from serve.schemas.allocations import TolerationIn
from serve.schemas.base import Body, Labels, LabelsField, Out
from serve.schemas.fleet import DeviceOut, DeviceSpecIn

#: Devices one provisioning may create.
MAX_PROVISION = 1000


class HostPlacementIn(Body):
    cpuCores: float = Field(gt=0, le=limits.MAX_DEVICE_CPU_CORES)
    memoryMB: int = Field(gt=0, le=limits.MAX_DEVICE_MEMORY_MB)
    storageMB: int = Field(default=0, ge=0, le=limits.MAX_DEVICE_STORAGE_MB)
    labels: Labels = LabelsField
    tolerations: list[TolerationIn] = Field(default_factory=list, max_length=64)
    preferredNodeId: uuid.UUID | None = None
    #: binpack, spread, balanced or least_loaded; absent: the active strategy's type.
    strategy: str | None = Field(default=None, min_length=1, max_length=32)

    def to_query(self) -> HostPlacementQuery:
        return HostPlacementQuery(
            Resources(self.cpuCores, self.memoryMB, self.storageMB),
            dict(self.labels),
            tuple(Toleration(t.key, t.value) for t in self.tolerations),
            self.preferredNodeId,
            self.strategy,
        )


class UtilizationOut(Out):
    cpu: float
    memory: float
    storage: float


class HostPlacementOut(Out):
    nodeId: uuid.UUID
    nodeName: str
    strategy: str
    score: int
    reason: str
    #: Each resource's use of the host once the device lands, in [0, 1].
    utilizationAfter: UtilizationOut

    @classmethod
    def of(cls, choice: HostChoice, strategy: Strategy) -> HostPlacementOut:
        return cls(
            nodeId=choice.host.node_id,
            nodeName=choice.host.name,
            strategy=strategy.value,
            score=choice.score,
            reason=choice.reason,
            utilizationAfter=UtilizationOut(**choice.utilisation_after),
        )


class ProvisionIn(Body):
    count: int = Field(ge=1, le=MAX_PROVISION)
    spec: DeviceSpecIn
    #: Labels the hosts must carry.
    labels: Labels = LabelsField
    tolerations: list[TolerationIn] = Field(default_factory=list, max_length=64)
    preferredNodeId: uuid.UUID | None = None
    strategy: str | None = Field(default=None, min_length=1, max_length=32)
    dryRun: bool = False
    #: All or nothing (default); false: as many as fit.
    atomic: bool = True

    def to_command(self) -> ProvisionDevices:
        return ProvisionDevices(
            self.count,
            self.spec.resources(),
            self.spec.androidVersion,
            dict(self.labels),
            tuple(Toleration(t.key, t.value) for t in self.tolerations),
            self.preferredNodeId,
            self.strategy,
            self.dryRun,
            self.atomic,
        )


class PlannedHostOut(Out):
    nodeId: uuid.UUID
    nodeName: str
    count: int
    score: int
    reason: str


class ProvisionOut(Out):
    requested: int
    planned: list[PlannedHostOut]
    devices: list[DeviceOut]

    @classmethod
    def of(cls, result: ProvisionedDevices) -> ProvisionOut:
        return cls(
            requested=result.requested,
            planned=[
                PlannedHostOut(
                    nodeId=p.node_id,
                    nodeName=p.node_name,
                    count=p.count,
                    score=p.score,
                    reason=p.reason,
                )
                for p in result.plan
            ],
            devices=[DeviceOut.of(d) for d in result.devices],
        )
