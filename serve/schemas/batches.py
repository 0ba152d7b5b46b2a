"""Bodies of the batch endpoints."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from scheduler.domain.allocations import (
    DEFAULT_DURATION_MINUTES,
    MAX_DURATION_MINUTES,
    MIN_DURATION_MINUTES,
    Allocation,
)
from scheduler.domain.errors import SchedulerError
from scheduler.domain.extensions import MAX_EXTENSION_MINUTES, MIN_EXTENSION_MINUTES
from scheduler.services.batch import AllocateBatch, ExtendBatch, ItemOutcome, ReleaseBatch
from scheduler.services.commands import AllocateDevice, Extended, Grant, Page, Release
from serve.schemas.allocations import (
    AllocationOut,
    ExtendedOut,
    GrantOut,
    PreferredSpecs,
    ReleaseOut,
)
from serve.schemas.base import (
    Body,
    Out,
)


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

    def to_command(self) -> ReleaseBatch:
        return ReleaseBatch(tuple(self.allocationIds))


class BatchExtendIn(Body):
    allocationIds: list[uuid.UUID] = Field(min_length=1, max_length=100)
    additionalMinutes: int = Field(ge=MIN_EXTENSION_MINUTES, le=MAX_EXTENSION_MINUTES)

    def to_command(self) -> ExtendBatch:
        return ExtendBatch(tuple(self.allocationIds), self.additionalMinutes)


class BatchQueryIn(Body):
    userIds: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=100
    )
    activeOnly: bool = False


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
    def of(cls, ids: list[uuid.UUID], outcomes: list[ItemOutcome[Extended]]) -> BatchExtendOut:
        results = [
            BatchExtendItemOut(
                index=o.index,
                allocationId=ids[o.index],
                status="extended" if o.value is not None else "failed",
                allocation=ExtendedOut.of(o.value) if o.value is not None else None,
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
