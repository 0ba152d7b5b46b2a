"""How far a running lease may be extended: the tenant's limits, and the next booking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.domain.allocations import Allocation, AllocationStatus

MIN_EXTENSION_MINUTES = 1
MAX_EXTENSION_MINUTES = 1440


@dataclass(frozen=True, slots=True)
class ExtensionPolicy:
    """A tenant's limits on extensions."""

    max_extensions: int
    max_total_minutes: int


@dataclass(frozen=True, slots=True)
class ExtensionInfo:
    can_extend: bool
    max_additional_minutes: int
    remaining_extends: int
    total_duration_minutes: int
    max_total_minutes: int
    reason: str | None = None


def total_minutes(allocation: Allocation) -> int:
    return round((allocation.expires_at - allocation.allocated_at) / timedelta(minutes=1))


def extension_info(
    allocation: Allocation,
    policy: ExtensionPolicy,
    *,
    now: datetime,
    next_booking_at: datetime | None = None,
    revocation_pending: bool = False,
) -> ExtensionInfo:
    """What the lease may still get. ``next_booking_at`` is when the device is booked next
    (its pre-warm start): a lease never runs into it."""
    total = total_minutes(allocation)
    remaining = max(0, policy.max_extensions - allocation.extension_count)
    limits = {
        "max_extension": MAX_EXTENSION_MINUTES,
        "max_total_duration": max(0, policy.max_total_minutes - total),
    }
    if next_booking_at is not None:
        limits["next_reservation"] = max(
            0, int((next_booking_at - allocation.expires_at) / timedelta(minutes=1))
        )
    binding = min(limits, key=lambda name: limits[name])
    allowed = limits[binding]
    reason: str | None = None if binding == "max_extension" else binding
    if allocation.status is not AllocationStatus.ACTIVE or allocation.expires_at <= now:
        reason, allowed = "allocation_not_active", 0
    elif revocation_pending:
        reason, allowed = "preemption_pending", 0
    elif remaining == 0:
        reason, allowed = "max_extensions_reached", 0
    return ExtensionInfo(
        can_extend=allowed >= MIN_EXTENSION_MINUTES,
        max_additional_minutes=allowed,
        remaining_extends=remaining,
        total_duration_minutes=total,
        max_total_minutes=policy.max_total_minutes,
        reason=reason,
    )
