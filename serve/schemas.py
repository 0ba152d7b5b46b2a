"""Request and response bodies of the HTTP API, in the original platform's camelCase."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scheduler.domain.allocations import (
    DEFAULT_DURATION_MINUTES,
    MAX_DURATION_MINUTES,
    MIN_DURATION_MINUTES,
    Allocation,
)
from scheduler.domain.errors import SchedulerError
from scheduler.domain.extensions import MAX_EXTENSION_MINUTES, MIN_EXTENSION_MINUTES, ExtensionInfo
from scheduler.domain.fleet import Device, Node
from scheduler.domain.queueing import (
    DEFAULT_WAIT_MINUTES,
    MAX_QUEUE_DURATION_MINUTES,
    MAX_WAIT_MINUTES,
    MIN_QUEUE_DURATION_MINUTES,
    MIN_WAIT_MINUTES,
)
from scheduler.domain.reservations import (
    DEFAULT_REMIND_MINUTES,
    MAX_REMIND_MINUTES,
    MAX_RESERVATION_MINUTES,
    MIN_RESERVATION_MINUTES,
    Reservation,
)
from scheduler.domain.resources import DeviceRequirements, Resources, Taint, Toleration
from scheduler.domain.tenants import Tenant
from scheduler.services.batch import AllocateBatch, ItemOutcome
from scheduler.services.commands import (
    AddDevices,
    AllocateDevice,
    CreateTenant,
    Grant,
    Page,
    RegisterNode,
    Release,
)
from scheduler.services.queue import EntryView, JoinQueue
from scheduler.services.reservations import Reserve

Name = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
UserId = Field(min_length=1, max_length=200)
Labels = dict[str, str]
#: At most 64 labels on anything, so a request body stays small.
LabelsField = Field(default_factory=dict, max_length=64)


class Body(BaseModel):
    """Request bodies reject unknown fields, so a misspelt field is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# ---- tenants and tokens ----------------------------------------------------------------


class QuotaIn(Body):
    maxDevices: int = Field(ge=0, le=1_000_000)
    cpuCores: float = Field(ge=0)
    memoryMB: int = Field(ge=0)
    storageMB: int = Field(ge=0)


class TenantIn(Body):
    name: str = Name
    tier: str = Field(default="standard", min_length=1, max_length=32)
    quota: QuotaIn

    def to_command(self) -> CreateTenant:
        q = self.quota
        return CreateTenant(
            self.name, q.maxDevices, Resources(q.cpuCores, q.memoryMB, q.storageMB), self.tier
        )


class QuotaOut(Out):
    maxDevices: int
    cpuCores: float
    memoryMB: int
    storageMB: int


class TenantOut(Out):
    id: uuid.UUID
    name: str
    tier: str
    quota: QuotaOut
    usage: QuotaOut
    extensionPolicy: dict[str, int]
    createdAt: datetime

    @classmethod
    def of(cls, t: Tenant) -> TenantOut:
        return cls(
            id=t.id,
            name=t.name,
            tier=t.tier,
            createdAt=t.created_at,
            extensionPolicy={
                "maxExtensions": t.max_extensions,
                "maxTotalMinutes": t.max_lease_minutes,
            },
            quota=QuotaOut(
                maxDevices=t.max_devices,
                cpuCores=t.quota.cpu_cores,
                memoryMB=t.quota.memory_mb,
                storageMB=t.quota.storage_mb,
            ),
            usage=QuotaOut(
                maxDevices=t.used_devices,
                cpuCores=t.used.cpu_cores,
                memoryMB=t.used.memory_mb,
                storageMB=t.used.storage_mb,
            ),
        )


class TokenIn(Body):
    tenantId: uuid.UUID
    userId: str = UserId
    role: Literal["admin", "service", "user"]


class TokenOut(Out):
    token: str
    tenantId: uuid.UUID
    userId: str
    role: str


# ---- nodes and devices -----------------------------------------------------------------


class ResourcesIn(Body):
    cpuCores: float = Field(gt=0, le=1024)
    memoryMB: int = Field(gt=0, le=16_777_216)
    storageMB: int = Field(gt=0, le=1_073_741_824)

    def resources(self) -> Resources:
        return Resources(self.cpuCores, self.memoryMB, self.storageMB)


class NodeCapacityIn(ResourcesIn):
    maxDevices: int = Field(gt=0, le=10_000)


class TaintIn(Body):
    key: str = Field(min_length=1, max_length=128)
    value: str = Field(default="", max_length=128)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


class NodeIn(Body):
    name: str = Name
    capacity: NodeCapacityIn
    labels: Labels = LabelsField
    taints: list[TaintIn] = Field(default_factory=list, max_length=64)
    host: str | None = Field(default=None, max_length=253)

    def to_command(self) -> RegisterNode:
        return RegisterNode(
            self.name,
            self.capacity.resources(),
            self.capacity.maxDevices,
            dict(self.labels),
            tuple(Taint(t.key, t.value, t.effect) for t in self.taints),
            self.host,
        )


class NodeCapacityOut(Out):
    cpuCores: float
    memoryMB: int
    storageMB: int
    maxDevices: int


class NodeOut(Out):
    id: uuid.UUID
    name: str
    status: str
    capacity: NodeCapacityOut
    labels: Labels
    taints: list[dict[str, str]]
    host: str
    createdAt: datetime
    lastHeartbeatAt: datetime | None
    devices: dict[str, int] = Field(default_factory=dict)

    @classmethod
    def of(cls, n: Node, devices: dict[str, int] | None = None) -> NodeOut:
        r = n.capacity.resources
        return cls(
            id=n.id,
            name=n.name,
            status=n.status.value,
            labels=n.labels,
            host=n.host,
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
    androidVersion: str = Field(min_length=1, max_length=16)


class AddDevicesIn(Body):
    count: int = Field(ge=1, le=1000)
    spec: DeviceSpecIn
    labels: Labels = LabelsField

    def to_command(self) -> AddDevices:
        return AddDevices(
            self.count, self.spec.resources(), self.spec.androidVersion, dict(self.labels)
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
    labels: Labels
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


class DevicePage(Out):
    items: list[DeviceOut]
    total: int
    nextCursor: str | None


# ---- allocations -------------------------------------------------------------------------


class TolerationIn(Body):
    key: str = Field(min_length=1, max_length=128)
    value: str | None = Field(default=None, max_length=128)


class PreferredSpecs(Body):
    minCpu: float = Field(default=0, ge=0, le=1024)
    minMemory: int = Field(default=0, ge=0)
    minStorage: int = Field(default=0, ge=0)
    androidVersion: str | None = Field(default=None, min_length=1, max_length=16)
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

    def to_queue_command(self) -> JoinQueue:
        specs = self.preferredSpecs or PreferredSpecs()
        return JoinQueue(
            self.userId, self.durationMinutes, specs.requirements(), self.maxWaitMinutes
        )

    def to_command(self) -> AllocateDevice:
        specs = self.preferredSpecs or PreferredSpecs()
        return AllocateDevice(self.userId, self.durationMinutes, specs.requirements())


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


class CountOut(Out):
    count: int


class Problem(Out):
    """An ``application/problem+json`` error body."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None


# ---- queue ------------------------------------------------------------------------------


def specs_out(r: DeviceRequirements) -> dict[str, Any]:
    return {
        "minCpu": r.min_cpu,
        "minMemory": r.min_memory_mb,
        "minStorage": r.min_storage_mb,
        "androidVersion": r.android_version,
        "labels": r.labels,
        "tolerations": [{"key": t.key, "value": t.value} for t in r.tolerations],
    }


class QueueJoinIn(Body):
    userId: str | None = Field(default=None, min_length=1, max_length=200)
    durationMinutes: int = Field(
        default=DEFAULT_DURATION_MINUTES,
        ge=MIN_QUEUE_DURATION_MINUTES,
        le=MAX_QUEUE_DURATION_MINUTES,
    )
    preferredSpecs: PreferredSpecs | None = None
    maxWaitMinutes: int = Field(
        default=DEFAULT_WAIT_MINUTES, ge=MIN_WAIT_MINUTES, le=MAX_WAIT_MINUTES
    )

    def to_command(self) -> JoinQueue:
        specs = self.preferredSpecs or PreferredSpecs()
        return JoinQueue(
            self.userId, self.durationMinutes, specs.requirements(), self.maxWaitMinutes
        )


class QueueEntryOut(Out):
    id: uuid.UUID
    status: str
    priority: float | None
    position: int | None
    aheadCount: int | None
    estimatedStartAt: datetime | None
    reason: str | None
    tenantId: uuid.UUID
    userId: str
    tier: str
    durationMinutes: int
    preferredSpecs: dict[str, Any]
    submittedAt: datetime
    deadlineAt: datetime
    endedAt: datetime | None
    allocationId: uuid.UUID | None

    @classmethod
    def of(cls, v: EntryView) -> QueueEntryOut:
        e = v.entry
        return cls(
            id=e.id,
            status=e.status.value,
            priority=v.priority,
            position=v.position,
            aheadCount=v.ahead_count,
            estimatedStartAt=v.estimated_start_at,
            reason=v.reason,
            tenantId=e.tenant_id,
            userId=e.user_id,
            tier=e.tier,
            durationMinutes=e.duration_minutes,
            preferredSpecs=specs_out(e.requirements),
            submittedAt=e.submitted_at,
            deadlineAt=e.deadline_at,
            endedAt=e.ended_at,
            allocationId=e.allocation_id,
        )


class QueuePositionOut(Out):
    id: uuid.UUID
    status: str
    position: int | None
    aheadCount: int | None
    estimatedStartAt: datetime | None
    reason: str | None


class QueuePage(Out):
    items: list[QueueEntryOut]
    total: int
    nextCursor: str | None


class CancelIn(Body):
    reason: str | None = Field(default=None, max_length=500)


class ProcessBatchIn(Body):
    maxCount: int = Field(default=10, ge=1, le=1000)


class GrantedOut(Out):
    granted: int


class TenantUpdateIn(Body):
    tier: str | None = Field(default=None, min_length=1, max_length=32)
    quota: QuotaIn | None = None
    extensionPolicy: ExtensionPolicyIn | None = None


class StrategyIn(Body):
    strategy: str = Field(min_length=1, max_length=32)


# ---- extensions -------------------------------------------------------------------------


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


class ExtensionPolicyIn(Body):
    maxExtensions: int = Field(ge=0, le=1000)
    maxTotalMinutes: int = Field(ge=1, le=525_600)


# ---- dry-run scheduling ------------------------------------------------------------------


class ScheduleItem(Body):
    preferredSpecs: PreferredSpecs | None = None
    priority: int = Field(default=1, ge=1, le=1000)
    antiAffinityGroup: str | None = Field(default=None, min_length=1, max_length=128)


class ScheduleBatchIn(Body):
    requests: list[ScheduleItem] = Field(min_length=1, max_length=1000)
    strategy: str | None = Field(default=None, max_length=32)
    maxTimeSeconds: float = Field(default=1.0, gt=0, le=10)


def choice_out(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    return {
        "deviceId": str(choice.device_id),
        "nodeId": str(choice.node_id),
        "score": choice.score,
        "terms": dict(choice.terms),
    }


def plan_out(plan: Any) -> dict[str, Any]:
    """A placement plan as JSON: by request index, with explanations."""
    return {
        "assignments": [
            {
                "index": index,
                "deviceId": str(device),
                "explanation": {
                    "chosen": choice_out(plan.explanations[index].chosen),
                    "runnerUp": choice_out(plan.explanations[index].runner_up),
                    "runnerUpTakenBy": plan.explanations[index].runner_up_taken_by,
                }
                if index in plan.explanations
                else None,
            }
            for index, device in sorted(plan.assignments.items())
        ],
        "unplaced": [
            {"index": index, "binding": u.binding.value, "reason": u.reason}
            for index, u in sorted(plan.unplaced.items())
        ],
        "objective": plan.objective,
        "placedWeight": plan.placed_weight,
        "score": plan.score,
        "greedyObjective": plan.greedy_objective,
        "bestBound": plan.best_bound,
        "provenOptimal": plan.proven_optimal,
        "solver": plan.solver.value,
        "solveSeconds": round(plan.solve_seconds, 4),
        "notes": list(plan.notes),
    }


# ---- reservations -----------------------------------------------------------------------


class ReservationIn(Body):
    userId: str | None = Field(default=None, min_length=1, max_length=200)
    startTime: datetime
    durationMinutes: int = Field(ge=MIN_RESERVATION_MINUTES, le=MAX_RESERVATION_MINUTES)
    preferredSpecs: PreferredSpecs | None = None
    deviceId: uuid.UUID | None = None
    remindBeforeMinutes: int = Field(default=DEFAULT_REMIND_MINUTES, ge=0, le=MAX_REMIND_MINUTES)

    @model_validator(mode="after")
    def _one_target(self) -> ReservationIn:
        if self.preferredSpecs is not None and self.deviceId is not None:
            raise ValueError("give preferredSpecs or deviceId, not both")
        return self

    def to_command(self) -> Reserve:
        specs = self.preferredSpecs or PreferredSpecs()
        return Reserve(
            self.userId,
            self.startTime,
            self.durationMinutes,
            specs.requirements(),
            self.deviceId,
            self.remindBeforeMinutes,
        )


class ReservationUpdateIn(Body):
    startTime: datetime | None = None
    durationMinutes: int | None = Field(
        default=None, ge=MIN_RESERVATION_MINUTES, le=MAX_RESERVATION_MINUTES
    )


class ReservationOut(Out):
    id: uuid.UUID
    status: str
    startTime: datetime
    endTime: datetime
    durationMinutes: int
    deviceId: uuid.UUID
    userId: str
    tenantId: uuid.UUID
    prewarmAt: datetime
    remindBeforeMinutes: int
    preferredSpecs: dict[str, Any]
    allocationId: uuid.UUID | None
    createdAt: datetime
    endedAt: datetime | None
    reason: str | None

    @classmethod
    def of(cls, r: Reservation) -> ReservationOut:
        return cls(
            id=r.id,
            status=r.status.value,
            startTime=r.start_time,
            endTime=r.end_time,
            durationMinutes=r.duration_minutes,
            deviceId=r.device_id,
            userId=r.user_id,
            tenantId=r.tenant_id,
            prewarmAt=r.prewarm_at,
            remindBeforeMinutes=r.remind_before_minutes,
            preferredSpecs=specs_out(r.requirements),
            allocationId=r.allocation_id,
            createdAt=r.created_at,
            endedAt=r.ended_at,
            reason=r.reason,
        )


class ReservationPage(Out):
    items: list[ReservationOut]
    total: int
    nextCursor: str | None


def conflicts_out(conflicts: tuple[tuple[str, str, str], ...]) -> list[dict[str, str]]:
    return [{"deviceId": d, "startTime": s, "endTime": e} for d, s, e in conflicts]


# ---- batches -----------------------------------------------------------------------------


class BatchAllocateItem(Body):
    """One request of a batch allocate: the allocate body without queueing."""

    userId: str | None = Field(default=None, min_length=1, max_length=200)
    durationMinutes: int = Field(
        default=DEFAULT_DURATION_MINUTES, ge=MIN_DURATION_MINUTES, le=MAX_DURATION_MINUTES
    )
    preferredSpecs: PreferredSpecs | None = None

    def to_command(self) -> AllocateDevice:
        specs = self.preferredSpecs or PreferredSpecs()
        return AllocateDevice(self.userId, self.durationMinutes, specs.requirements())


class BatchAllocateIn(Body):
    requests: list[BatchAllocateItem] = Field(min_length=1, max_length=100)
    atomic: bool = False
    antiAffinity: bool = Field(default=False, description="spread this batch over distinct nodes")

    def to_command(self) -> AllocateBatch:
        return AllocateBatch(
            tuple(r.to_command() for r in self.requests), self.atomic, self.antiAffinity
        )


class BatchReleaseIn(Body):
    allocationIds: list[uuid.UUID] = Field(min_length=1, max_length=500)


class BatchExtendIn(Body):
    allocationIds: list[uuid.UUID] = Field(min_length=1, max_length=100)
    additionalMinutes: int = Field(ge=MIN_EXTENSION_MINUTES, le=MAX_EXTENSION_MINUTES)


class BatchQueryIn(Body):
    userIds: list[str] = Field(min_length=1, max_length=100)
    activeOnly: bool = False

    @model_validator(mode="after")
    def _user_ids(self) -> BatchQueryIn:
        if any(not 0 < len(u) <= 200 for u in self.userIds):
            raise ValueError("every userId must be 1 to 200 characters")
        return self


class ItemErrorOut(Out):
    code: str
    detail: str

    @classmethod
    def of(cls, error: SchedulerError | None) -> ItemErrorOut | None:
        return cls(code=error.code, detail=error.detail) if error is not None else None


class BatchAllocateItemOut(Out):
    index: int
    status: Literal["granted", "failed"]
    allocation: GrantOut | None
    error: ItemErrorOut | None


class BatchAllocateOut(Out):
    results: list[BatchAllocateItemOut]
    granted: int
    failed: int

    @classmethod
    def of(cls, outcomes: list[ItemOutcome[Grant]]) -> BatchAllocateOut:
        results = [
            BatchAllocateItemOut(
                index=o.index,
                status="granted" if o.value is not None else "failed",
                allocation=GrantOut.of(o.value) if o.value is not None else None,
                error=ItemErrorOut.of(o.error),
            )
            for o in outcomes
        ]
        granted = sum(r.status == "granted" for r in results)
        return cls(results=results, granted=granted, failed=len(results) - granted)


class BatchReleaseItemOut(Out):
    index: int
    allocationId: uuid.UUID
    status: Literal["released", "failed"]
    release: ReleaseOut | None
    error: ItemErrorOut | None


class BatchReleaseOut(Out):
    results: list[BatchReleaseItemOut]
    released: int
    failed: int

    @classmethod
    def of(cls, ids: list[uuid.UUID], outcomes: list[ItemOutcome[Release]]) -> BatchReleaseOut:
        results = [
            BatchReleaseItemOut(
                index=o.index,
                allocationId=ids[o.index],
                status="released" if o.value is not None else "failed",
                release=ReleaseOut.of(o.value) if o.value is not None else None,
                error=ItemErrorOut.of(o.error),
            )
            for o in outcomes
        ]
        released = sum(r.status == "released" for r in results)
        return cls(results=results, released=released, failed=len(results) - released)


class BatchExtendItemOut(Out):
    index: int
    allocationId: uuid.UUID
    status: Literal["extended", "failed"]
    allocation: ExtendedOut | None
    error: ItemErrorOut | None


class BatchExtendOut(Out):
    results: list[BatchExtendItemOut]
    extended: int
    failed: int

    @classmethod
    def of(
        cls,
        ids: list[uuid.UUID],
        outcomes: list[ItemOutcome[tuple[Allocation, ExtensionInfo]]],
    ) -> BatchExtendOut:
        results = [
            BatchExtendItemOut(
                index=o.index,
                allocationId=ids[o.index],
                status="extended" if o.value is not None else "failed",
                allocation=ExtendedOut(
                    **AllocationOut.of(o.value[0]).model_dump(),
                    extendInfo=ExtendInfoOut.of(o.value[1]),
                )
                if o.value is not None
                else None,
                error=ItemErrorOut.of(o.error),
            )
            for o in outcomes
        ]
        extended = sum(r.status == "extended" for r in results)
        return cls(results=results, extended=extended, failed=len(results) - extended)


class BatchQueryItemOut(Out):
    index: int
    userId: str
    status: Literal["found", "failed"]
    allocations: list[AllocationOut] | None
    total: int | None
    nextCursor: str | None
    error: ItemErrorOut | None


class BatchQueryOut(Out):
    results: list[BatchQueryItemOut]
    found: int
    failed: int

    @classmethod
    def of(
        cls, user_ids: list[str], outcomes: list[ItemOutcome[Page[Allocation]]]
    ) -> BatchQueryOut:
        results = [
            BatchQueryItemOut(
                index=o.index,
                userId=user_ids[o.index],
                status="found" if o.value is not None else "failed",
                allocations=[AllocationOut.of(a) for a in o.value.items]
                if o.value is not None
                else None,
                total=o.value.total if o.value is not None else None,
                nextCursor=o.value.next_cursor if o.value is not None else None,
                error=ItemErrorOut.of(o.error),
            )
            for o in outcomes
        ]
        found = sum(r.status == "found" for r in results)
        return cls(results=results, found=found, failed=len(results) - found)
