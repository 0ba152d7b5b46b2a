"""Bodies of the wait queue."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from scheduler.domain.allocations import (
    DEFAULT_DURATION_MINUTES,
)
from scheduler.domain.queueing import (
    DEFAULT_WAIT_MINUTES,
    MAX_QUEUE_DURATION_MINUTES,
    MAX_WAIT_MINUTES,
    MIN_QUEUE_DURATION_MINUTES,
    MIN_WAIT_MINUTES,
    QueueEntry,
)
from scheduler.domain.resources import DeviceRequirements
from scheduler.services.queue import JoinQueue
from serve.schemas.allocations import (
    PreferredSpecs,
)
from serve.schemas.base import (
    Body,
    Out,
)


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
    viewAsOf: datetime | None = Field(
        default=None, description="the drain that computed position, ETA and reason"
    )

    @classmethod
    def of(cls, e: QueueEntry) -> QueueEntryOut:
        v = e.view
        return cls(
            id=e.id,
            status=e.status.value,
            priority=v.priority if v else None,
            position=v.position if v else None,
            aheadCount=v.ahead_count if v else None,
            estimatedStartAt=v.estimated_start_at if v else None,
            reason=v.reason.value if v else e.reason,
            tenantId=e.tenant_id,
            userId=e.user_id,
            tier=e.tier,
            durationMinutes=e.duration_minutes,
            preferredSpecs=specs_out(e.requirements),
            submittedAt=e.submitted_at,
            deadlineAt=e.deadline_at,
            endedAt=e.ended_at,
            allocationId=e.allocation_id,
            viewAsOf=v.as_of if v else None,
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


class ProcessBatchIn(Body):
    maxCount: int = Field(default=10, ge=1, le=1000)


class GrantedOut(Out):
    granted: int
