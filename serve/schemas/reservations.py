"""Bodies of reservations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from scheduler.domain.reservations import (
    DEFAULT_REMIND_MINUTES,
    MAX_CHECK_IN_MINUTES,
    MAX_REMIND_MINUTES,
    MAX_RESERVATION_MINUTES,
    MIN_RESERVATION_MINUTES,
    Reservation,
)
from scheduler.services.reservations import Reserve
from serve.schemas.allocations import (
    PreferredSpecs,
)
from serve.schemas.base import (
    Body,
    Out,
)
from serve.schemas.queue import (
    specs_out,
)


class ReservationIn(Body):
    userId: str | None = Field(default=None, min_length=1, max_length=200)
    startTime: datetime
    durationMinutes: int = Field(ge=MIN_RESERVATION_MINUTES, le=MAX_RESERVATION_MINUTES)
    preferredSpecs: PreferredSpecs | None = None
    deviceId: uuid.UUID | None = None
    remindBeforeMinutes: int = Field(default=DEFAULT_REMIND_MINUTES, ge=0, le=MAX_REMIND_MINUTES)
    #: Minutes after the start its user has to check in, or it is a no-show and its lease
    #: is revoked (0: none asked; absent: ``PHONEFLEET_BOOKING_CHECK_IN_MINUTES``).
    checkInMinutes: int | None = Field(default=None, ge=0, le=MAX_CHECK_IN_MINUTES)

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
            self.checkInMinutes,
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
    checkInMinutes: int
    #: When its user must check in by (``null``: no check-in asked).
    checkInBy: datetime | None
    checkedInAt: datetime | None

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
            checkInMinutes=r.check_in_minutes,
            checkInBy=r.check_in_by,
            checkedInAt=r.checked_in_at,
        )


class ReservationPage(Out):
    items: list[ReservationOut]
    total: int
    nextCursor: str | None


def conflicts_out(conflicts: tuple[tuple[str, str, str], ...]) -> list[dict[str, str]]:
    return [{"deviceId": d, "startTime": s, "endTime": e} for d, s, e in conflicts]
