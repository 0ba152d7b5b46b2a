"""Use cases of lease extensions, and the warning before a lease expires."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from scheduler.domain import events
from scheduler.domain.allocations import Allocation
from scheduler.domain.errors import (
    AllocationNotFound,
    ExtensionConflictsWithReservation,
    ExtensionNotAllowed,
)
from scheduler.domain.extensions import ExtensionInfo, ExtensionPolicy, extension_info
from scheduler.domain.identity import Principal, scope_of
from scheduler.domain.tenants import Tenant
from scheduler.services.command_path import Unit
from scheduler.services.commands import ExtendAllocation, Extended
from scheduler.services.ports import UnitOfWork


def policy_of(tenant: Tenant | None) -> ExtensionPolicy:
    if tenant is None:
        return ExtensionPolicy(0, 0)
    return ExtensionPolicy(tenant.max_extensions, tenant.max_lease_minutes)


async def _info(uow: UnitOfWork, allocation: Allocation, now: datetime) -> ExtensionInfo:
    tenant = await uow.tenants.get(allocation.tenant_id)
    booking = await uow.reservations.next_booking_after(allocation.device_id, allocation.expires_at)
    return extension_info(
        allocation,
        policy_of(tenant),
        now=now,
        next_booking_at=booking,
        revocation_pending=allocation.revoke_at is not None,
    )


async def get_extension_info(
    uow: UnitOfWork, principal: Principal, allocation_id: uuid.UUID, *, now: datetime
) -> ExtensionInfo:
    """Raises:
    AllocationNotFound: no such allocation is visible to the caller.
    """
    async with uow:
        allocation = await uow.allocations.get(allocation_id, scope_of(principal))
        if allocation is None:
            raise AllocationNotFound()
        return await _info(uow, allocation, now)


async def extend_allocation(command: ExtendAllocation, unit: Unit) -> Extended:
    """Push a running lease's expiry back, within the tenant's limits.

    Raises:
        AllocationNotFound: no active lease visible to the caller.
        ExtensionNotAllowed: beyond the limits (the error says how much is possible).
        ExtensionConflictsWithReservation: the device's next booking is the limit.
    """
    uow, now = unit.uow, unit.now
    allocation = await uow.allocations.get(
        command.allocation_id, scope_of(unit.principal), lock=True
    )
    if allocation is None:
        raise AllocationNotFound()
    # The device's row serializes this with bookings of the device (never an overlap).
    await uow.reservations.lock_device(allocation.device_id)
    info = await _info(uow, allocation, now)
    if command.additional_minutes > info.max_additional_minutes:
        error = (
            ExtensionConflictsWithReservation
            if info.reason == "next_reservation"
            else ExtensionNotAllowed
        )
        raise error(
            f"at most {info.max_additional_minutes} more minutes are possible"
            f" ({info.reason or 'limit'})",
            info.max_additional_minutes,
        )
    expires_at = allocation.expires_at + timedelta(minutes=command.additional_minutes)
    await uow.allocations.extend(allocation.id, expires_at)
    unit.emit(
        events.AllocationExtended(
            occurred_at=now,
            allocation_id=allocation.id,
            user_id=allocation.user_id,
            tenant_id=allocation.tenant_id,
            additional_minutes=command.additional_minutes,
            expires_at=expires_at,
            reason=command.reason,
        )
    )
    extended = replace(
        allocation, expires_at=expires_at, extension_count=allocation.extension_count + 1
    )
    return Extended(extended, await _info(uow, extended, now))


async def warn_expiring(unit: Unit, *, lead: timedelta, limit: int = 500) -> int:
    """Inside the unit's transaction: one ``allocation.expiring`` event per lease, ``lead``
    before it expires, so clients can offer an extension in time."""
    now = unit.now
    leases = await unit.uow.allocations.lock_unwarned(now + lead, limit)
    if not leases:
        return 0
    await unit.uow.allocations.mark_warned([a.id for a in leases], now)
    unit.emit(
        *(
            events.AllocationExpiring(
                occurred_at=now,
                allocation_id=a.id,
                user_id=a.user_id,
                tenant_id=a.tenant_id,
                expires_at=a.expires_at,
                seconds_left=max(0, int((a.expires_at - now).total_seconds())),
            )
            for a in leases
        )
    )
    return len(leases)
