"""``POST /scheduler/nodes/placement``: where a new device of a spec would go."""

from __future__ import annotations

import uuid

from pydantic import Field

from placement.host_choice import HostChoice
from placement.problem import Strategy
from scheduler.domain import limits
from scheduler.domain.resources import Resources, Toleration
from scheduler.services.host_placement import HostPlacementQuery
from serve.schemas.allocations import TolerationIn
from serve.schemas.base import Body, Labels, LabelsField, Out


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
