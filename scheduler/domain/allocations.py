"""Leases on devices: their lifecycle and the usage record each one ends with."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from scheduler.domain.errors import InvalidRequest
from scheduler.domain.resources import Resources

MIN_DURATION_MINUTES = 1
MAX_DURATION_MINUTES = 1440
DEFAULT_DURATION_MINUTES = 60


class AllocationStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Allocation:
    """One user's lease on one device."""

    id: uuid.UUID
    device_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str
    status: AllocationStatus
    allocated_at: datetime
    expires_at: datetime
    resources: Resources
    ended_at: datetime | None = None
    end_reason: str | None = None
    extension_count: int = 0
    revoke_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """What billing needs about one ended lease, to the second."""

    id: uuid.UUID
    allocation_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str
    device_id: uuid.UUID
    started_at: datetime
    ended_at: datetime
    duration_seconds: int
    resources: Resources
    end_reason: str


def lease_window(now: datetime, duration_minutes: int) -> tuple[datetime, datetime]:
    """The start and expiry of a new lease.

    Raises:
        InvalidRequest: the duration is outside 1–1440 minutes.
    """
    if not MIN_DURATION_MINUTES <= duration_minutes <= MAX_DURATION_MINUTES:
        raise InvalidRequest(
            f"durationMinutes must be between {MIN_DURATION_MINUTES} and {MAX_DURATION_MINUTES}"
        )
    return now, now + timedelta(minutes=duration_minutes)


def end_time(allocation: Allocation, status: AllocationStatus, now: datetime) -> datetime:
    """When a lease ends: never past its due second, however late the sweep or release ran."""
    if status is AllocationStatus.EXPIRED:
        return allocation.expires_at
    return max(allocation.allocated_at, min(now, allocation.expires_at))


def usage_record_for(
    allocation: Allocation, *, ended_at: datetime, end_reason: str, record_id: uuid.UUID
) -> UsageRecord:
    """The single usage record of an ended lease; partial seconds are billed as whole ones."""
    micros = max(0, (ended_at - allocation.allocated_at) // timedelta(microseconds=1))
    return UsageRecord(
        id=record_id,
        allocation_id=allocation.id,
        tenant_id=allocation.tenant_id,
        user_id=allocation.user_id,
        device_id=allocation.device_id,
        started_at=allocation.allocated_at,
        ended_at=ended_at,
        duration_seconds=-(-micros // 1_000_000),
        resources=allocation.resources,
        end_reason=end_reason,
    )
