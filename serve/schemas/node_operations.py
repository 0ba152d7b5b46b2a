"""Bodies of the node and device operations: maintenance, drains, edits, removal."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from scheduler.domain.resources import Taint
from scheduler.services.device_health import Relocation
from scheduler.services.node_operations import DrainNode, SetMaintenance, UpdateNode
from serve.schemas.base import Body, Labels, LabelsField, Out
from serve.schemas.fleet import NodeCapacityIn, TaintIn

Reason = Field(default=None, max_length=500)


class MaintenanceIn(Body):
    enable: bool
    reason: str | None = Reason

    def to_command(self, node_id: uuid.UUID) -> SetMaintenance:
        return SetMaintenance(node_id, self.enable, self.reason)


class DrainIn(Body):
    """``migrate`` moves every lease now; ``wait`` lets them end and moves what is left
    after ``deadlineMinutes`` (none: they all run to their end)."""

    mode: Literal["wait", "migrate"] = "wait"
    deadlineMinutes: int | None = Field(default=None, ge=0, le=10_080)
    reason: str | None = Reason

    def to_command(self, node_id: uuid.UUID) -> DrainNode:
        return DrainNode(node_id, self.mode, self.deadlineMinutes, self.reason)


class NodePatchIn(Body):
    """What to change; the capacity never below what the node's devices use (409)."""

    name: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )
    labels: Labels | None = Field(default=None, max_length=64)
    taints: list[TaintIn] | None = Field(default=None, max_length=64)
    capacity: NodeCapacityIn | None = None
    cpuAllocationRate: float | None = Field(default=None, ge=1, le=16)
    memoryAllocationRate: float | None = Field(default=None, ge=1, le=16)

    def to_command(self, node_id: uuid.UUID) -> UpdateNode:
        return UpdateNode(
            node_id,
            name=self.name,
            labels=dict(self.labels) if self.labels is not None else None,
            taints=tuple(Taint(t.key, t.value, t.effect) for t in self.taints)
            if self.taints is not None
            else None,
            resources=self.capacity.resources() if self.capacity else None,
            max_devices=self.capacity.maxDevices if self.capacity else None,
            cpu_allocation_rate=self.cpuAllocationRate,
            memory_allocation_rate=self.memoryAllocationRate,
        )


class DevicePatchIn(Body):
    labels: Labels = LabelsField


class RescheduleIn(Body):
    reason: str | None = Reason
    #: A node to move the lease to, if one of its devices serves it (else any node).
    preferredNodeId: uuid.UUID | None = None


class RescheduledOut(Out):
    allocationId: uuid.UUID
    movedTo: uuid.UUID

    @classmethod
    def of(cls, r: Relocation) -> RescheduledOut:
        assert r.moved_to is not None
        return cls(allocationId=r.allocation_id, movedTo=r.moved_to)
