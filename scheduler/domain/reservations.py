"""Bookings of a device for a future window: their lifecycle and the rules of the window."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from scheduler.domain.errors import InvalidRequest
from scheduler.domain.resources import DeviceRequirements

MIN_RESERVATION_MINUTES = 15
MAX_RESERVATION_MINUTES = 1440
MAX_REMIND_MINUTES = 60
DEFAULT_REMIND_MINUTES = 15
#: The longest check-in window a booking may ask for.
MAX_CHECK_IN_MINUTES = 240


class ReservationStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    FAILED = "failed"


#: Statuses whose window still holds the device.
HOLDING = (ReservationStatus.PENDING.value, ReservationStatus.ACTIVE.value)


@dataclass(frozen=True, slots=True)
class Reservation:
    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str
    device_id: uuid.UUID
    status: ReservationStatus
    start_time: datetime
    end_time: datetime
    prewarm_at: datetime
    remind_before_minutes: int
    requirements: DeviceRequirements
    created_at: datetime
    allocation_id: uuid.UUID | None = None
    ended_at: datetime | None = None
    reason: str | None = None
    #: Booked by ``deviceId``: that device or none (a spec booking may move to another).
    pinned: bool = False
    #: Its user must check in within this many minutes of the start, or the booking is a
    #: no-show and its lease is revoked (0: no check-in asked).
    check_in_minutes: int = 0
    checked_in_at: datetime | None = None

    @property
    def check_in_by(self) -> datetime | None:
        """When its user must have checked in (``None``: never asked)."""
        if not self.check_in_minutes:
            return None
        return self.start_time + timedelta(minutes=self.check_in_minutes)

    @property
    def duration_minutes(self) -> int:
        return round((self.end_time - self.start_time) / timedelta(minutes=1))


@dataclass(frozen=True, slots=True)
class BookingRules:
    """How far ahead one may book, and how long before the start the device is readied."""

    horizon: timedelta = timedelta(days=30)
    prewarm: timedelta = timedelta(minutes=2)
    #: Pending bookings a tenant may hold at once.
    max_pending: int = 100
    #: The check-in window of a booking that names none (0: none asked).
    check_in_minutes: int = 0


def booking_window(
    start: datetime, duration_minutes: int, *, now: datetime, rules: BookingRules
) -> tuple[datetime, datetime, datetime]:
    """``(start, end, prewarm_at)`` of a booking.

    Raises:
        InvalidRequest: the start is in the past or beyond the horizon, or the duration is
            out of range.
    """
    if start.tzinfo is None:
        raise InvalidRequest("startTime must carry a time zone (e.g. 2026-12-01T09:00:00Z)")
    if not MIN_RESERVATION_MINUTES <= duration_minutes <= MAX_RESERVATION_MINUTES:
        raise InvalidRequest(
            f"durationMinutes must be between {MIN_RESERVATION_MINUTES} and "
            f"{MAX_RESERVATION_MINUTES}"
        )
    if start < now:
        raise InvalidRequest("startTime is in the past")
    if start > now + rules.horizon:
        raise InvalidRequest(
            f"startTime is beyond the booking horizon of {rules.horizon.days} days"
        )
    end = start + timedelta(minutes=duration_minutes)
    return start, end, max(now, start - rules.prewarm)
