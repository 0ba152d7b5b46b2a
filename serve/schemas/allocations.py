"""Bodies of allocations: allocate, release, the lease, its extensions."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field, model_validator

from scheduler.domain import limits
from scheduler.domain.allocations import (
    DEFAULT_DURATION_MINUTES,
    MAX_DURATION_MINUTES,
    MIN_DURATION_MINUTES,
    Allocation,
)
from scheduler.domain.extensions import MAX_EXTENSION_MINUTES, MIN_EXTENSION_MINUTES, ExtensionInfo
from scheduler.domain.queueing import (
    DEFAULT_WAIT_MINUTES,
    MAX_WAIT_MINUTES,
    MIN_WAIT_MINUTES,
)
from scheduler.domain.resources import DeviceRequirements, Toleration
from scheduler.services.commands import (
    AllocateDevice,
    Extended,
    Grant,
    Release,
    ReleaseAllocation,
)
from serve.schemas.base import (
    Body,
    Labels,
    LabelsField,
    Out,
)


class TolerationIn(Body):
    key: str = Field(min_length=1, max_length=128)
    value: str | None = Field(default=None, max_length=128)


class PreferredSpecs(Body):
    minCpu: float = Field(default=0.0, ge=0, le=limits.MAX_DEVICE_CPU_CORES)
    minMemory: int = Field(default=0, ge=0, le=limits.MAX_DEVICE_MEMORY_MB)
    minStorage: int = Field(default=0, ge=0, le=limits.MAX_DEVICE_STORAGE_MB)
    androidVersion: str | None = Field(
        default=None, min_length=1, max_length=limits.MAX_ANDROID_VERSION
    )
    labels: Labels = LabelsField
    tolerations: list[TolerationIn] = Field(default_factory=list, max_length=64)

    def requirements(self) -> DeviceRequirements:
        return DeviceRequirements(
            self.minCpu,
            self.minMemory,
            self.minStorage,
            self.androidVersion,
            dict(self.labels),
            tuple(Toleration(t.key, t.value) for t in self.tolerations),
        )


class AllocateIn(Body):
    userId: str | None = Field(default=None, min_length=1, max_length=200)
    durationMinutes: int = Field(
        default=DEFAULT_DURATION_MINUTES, ge=MIN_DURATION_MINUTES, le=MAX_DURATION_MINUTES
    )
    preferredSpecs: PreferredSpecs | None = None
    queueIfUnavailable: bool = False
    maxWaitMinutes: int = Field(
        default=DEFAULT_WAIT_MINUTES, ge=MIN_WAIT_MINUTES, le=MAX_WAIT_MINUTES
    )

    def to_command(self) -> AllocateDevice:
        specs = self.preferredSpecs or PreferredSpecs()
        return AllocateDevice(
            self.userId,
            self.durationMinutes,
            specs.requirements(),
            self.queueIfUnavailable,
            self.maxWaitMinutes,
        )


class DeviceSummary(Out):
    id: uuid.UUID
    name: str
    status: str
    nodeId: uuid.UUID


class GrantOut(Out):
    allocationId: uuid.UUID
    deviceId: uuid.UUID
    device: DeviceSummary
    userId: str
    tenantId: uuid.UUID
    allocatedAt: datetime
    expiresAt: datetime
    adbHost: str
    adbPort: int

    @classmethod
    def of(cls, g: Grant) -> GrantOut:
        a, d = g.allocation, g.device
        return cls(
            allocationId=a.id,
            deviceId=d.id,
            device=DeviceSummary(id=d.id, name=d.name, status=d.status.value, nodeId=d.node_id),
            userId=a.user_id,
            tenantId=a.tenant_id,
            allocatedAt=a.allocated_at,
            expiresAt=a.expires_at,
            adbHost=d.adb_host,
            adbPort=d.adb_port,
        )


class ReleaseIn(Body):
    allocationId: uuid.UUID | None = None
    deviceId: uuid.UUID | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ReleaseIn:
        if (self.allocationId is None) == (self.deviceId is None):
            raise ValueError("give exactly one of allocationId or deviceId")
        return self

    def to_command(self) -> ReleaseAllocation:
        return ReleaseAllocation(self.allocationId, self.deviceId)


class ReleaseOut(Out):
    allocationId: uuid.UUID
    deviceId: uuid.UUID
    durationSeconds: int
    usageRecordId: uuid.UUID

    @classmethod
    def of(cls, r: Release) -> ReleaseOut:
        return cls(
            allocationId=r.allocation_id,
            deviceId=r.device_id,
            durationSeconds=r.duration_seconds,
            usageRecordId=r.usage_record_id,
        )


class AllocationOut(Out):
    id: uuid.UUID
    allocationId: uuid.UUID
    deviceId: uuid.UUID
    tenantId: uuid.UUID
    userId: str
    status: str
    allocatedAt: datetime
    expiresAt: datetime
    releasedAt: datetime | None
    endReason: str | None
    durationMinutes: int
    extensionCount: int

    @classmethod
    def of(cls, a: Allocation) -> AllocationOut:
        return cls(
            id=a.id,
            allocationId=a.id,
            deviceId=a.device_id,
            tenantId=a.tenant_id,
            userId=a.user_id,
            status=a.status.value,
            allocatedAt=a.allocated_at,
            expiresAt=a.expires_at,
            releasedAt=a.ended_at,
            endReason=a.end_reason,
            durationMinutes=round((a.expires_at - a.allocated_at).total_seconds() / 60),
            extensionCount=a.extension_count,
        )


class AllocationPage(Out):
    items: list[AllocationOut]
    total: int
    nextCursor: str | None


class ExtendIn(Body):
    additionalMinutes: int = Field(ge=MIN_EXTENSION_MINUTES, le=MAX_EXTENSION_MINUTES)
    reason: str | None = Field(default=None, max_length=500)


class ExtendInfoOut(Out):
    canExtend: bool
    maxAdditionalMinutes: int
    remainingExtends: int
    totalDurationMinutes: int
    maxTotalMinutes: int
    reason: str | None

    @classmethod
    def of(cls, i: ExtensionInfo) -> ExtendInfoOut:
        return cls(
            canExtend=i.can_extend,
            maxAdditionalMinutes=i.max_additional_minutes,
            remainingExtends=i.remaining_extends,
            totalDurationMinutes=i.total_duration_minutes,
            maxTotalMinutes=i.max_total_minutes,
            reason=i.reason,
        )


class ExtendedOut(AllocationOut):
    extendInfo: ExtendInfoOut

    @classmethod
    def of(cls, e: Extended) -> ExtendedOut:  # type: ignore[override]
        return cls(
            **AllocationOut.of(e.allocation).model_dump(), extendInfo=ExtendInfoOut.of(e.info)
        )
