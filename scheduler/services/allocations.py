"""Use cases of leases: allocate (or queue), release, expire, and the reads over them.

The handlers (``allocate_device``, ``release_allocation``, ``expire_due_allocations``) run
inside the command path's transaction (``Unit``); the reads open their own.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from scheduler.domain.allocations import Allocation, AllocationStatus, lease_window
from scheduler.domain.errors import AllocationNotFound, NoCapacity
from scheduler.domain.identity import Principal, acting_user, require_admin, scope_of
from scheduler.services.command_path import GrantAtCommit, Unit
from scheduler.services.commands import (
    AllocateDevice,
    AllocationFilter,
    Count,
    ExpireDueAllocations,
    Grant,
    Page,
    PendingLease,
    Release,
    ReleaseAllocation,
)
from scheduler.services.leases import (
    end_due_allocations,
    end_lease,
    place_lease,
    place_lease_at_commit,
)
from scheduler.services.planning import check_satisfiable
from scheduler.services.ports import UnitOfWork
from scheduler.services.queue import JoinQueue, Queued, enqueue


async def allocate_device(
    command: AllocateDevice, unit: Unit
) -> Grant | GrantAtCommit[Grant] | Queued:
    """Lease the best-fitting available device, charging the tenant's quota; with
    ``queue_if_unavailable``, join the queue when none is free.

    Raises:
        NoCapacity: no available device matches (and the request does not queue).
        Unsatisfiable: no device of the fleet could ever match.
        QuotaExceeded: the tenant's quota does not admit the device.
        QueueFull: it would queue, and the queue is full.
        Forbidden, InvalidRequest: the principal may not act for that user.
    """
    user_id = acting_user(unit.principal, command.user_id)
    allocated_at, expires_at = lease_window(unit.now, command.duration_minutes)
    lease = PendingLease(uuid.uuid4(), unit.principal.tenant_id, user_id, allocated_at, expires_at)
    try:
        if unit.grant_at_commit:
            return await place_lease_at_commit(unit, lease, command.requirements)
        return await place_lease(unit, lease, command.requirements)
    except NoCapacity:
        await check_satisfiable(unit.uow, command.requirements)  # "never", not "not now"
        if not command.queue_if_unavailable:
            raise
    join = JoinQueue(
        user_id, command.duration_minutes, command.requirements, command.max_wait_minutes
    )
    return await enqueue(join, unit, satisfiable=True)


async def release_allocation(command: ReleaseAllocation, unit: Unit) -> Release:
    """End a lease on the owner's (or its tenant service's, or an admin's) request.

    Raises:
        AllocationNotFound: no active lease visible to the caller matches.
    """
    held = await unit.uow.allocations.lock_with_node(
        scope_of(unit.principal), allocation_id=command.allocation_id, device_id=command.device_id
    )
    if held is None or held[0].status is not AllocationStatus.ACTIVE:
        raise AllocationNotFound("no active allocation visible to the caller matches")
    allocation, node_id = held
    return await end_lease(unit, allocation, AllocationStatus.RELEASED, "released", node_id)


async def expire_due_allocations(command: ExpireDueAllocations, unit: Unit) -> Count:
    """The admin's sweep: end every lease whose time has come, now.

    Raises:
        Forbidden: the caller is not an admin.
    """
    require_admin(unit.principal)
    return Count(len(await end_due_allocations(unit)))


async def next_expiry(uow: UnitOfWork) -> datetime | None:
    async with uow:
        return await uow.allocations.next_expiry()


async def get_allocation(
    uow: UnitOfWork, principal: Principal, allocation_id: uuid.UUID
) -> Allocation:
    """Raises:
    AllocationNotFound: no such allocation is visible to the caller.
    """
    async with uow:
        allocation = await uow.allocations.get(allocation_id, scope_of(principal))
    if allocation is None:
        raise AllocationNotFound()
    return allocation


async def list_allocations(
    uow: UnitOfWork, principal: Principal, query: AllocationFilter
) -> Page[Allocation]:
    """Allocations visible to the caller, newest first."""
    scope = scope_of(principal)
    if scope.user_id is not None and query.user_id not in (None, scope.user_id):
        return Page([], 0, None)
    async with uow:
        return await uow.allocations.list(scope, query)


async def allocation_stats(
    uow: UnitOfWork, principal: Principal, *, now: datetime
) -> dict[str, Any]:
    async with uow:
        return await uow.allocations.stats(scope_of(principal), now)
