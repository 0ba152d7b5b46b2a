"""Use cases of leases: allocate, release, expire, and the reads over them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from placement.greedy import rank_best_fit
from placement.model import as_vector
from scheduler.domain import events
from scheduler.domain.allocations import (
    Allocation,
    AllocationStatus,
    end_time,
    lease_window,
    usage_record_for,
)
from scheduler.domain.errors import (
    AllocationNotFound,
    IdempotencyKeyReused,
    NoCapacity,
    QuotaExceeded,
)
from scheduler.domain.fleet import Device, DeviceStatus
from scheduler.domain.identity import Principal, acting_user, scope_of
from scheduler.domain.resources import DeviceRequirements
from scheduler.services.commands import (
    AllocateDevice,
    AllocationFilter,
    Grant,
    Page,
    PendingLease,
    Release,
)
from scheduler.services.planning import check_satisfiable
from scheduler.services.ports import UnitOfWork

ALLOCATE_OPERATION = "allocate"
#: Fresh looks at the fleet one placement takes when concurrent requests took its picks.
CLAIM_ATTEMPTS = 3


def _granted_event(allocation: Allocation, device: Device) -> events.Event:
    return events.Event(
        type=events.ALLOCATION_GRANTED,
        aggregate_id=str(allocation.id),
        occurred_at=allocation.allocated_at,
        payload={
            "allocationId": str(allocation.id),
            "deviceId": str(device.id),
            "nodeId": str(device.node_id),
            "tenantId": str(allocation.tenant_id),
            "userId": allocation.user_id,
            "expiresAt": allocation.expires_at.isoformat(),
        },
    )


async def allocate_device(
    uow: UnitOfWork,
    principal: Principal,
    command: AllocateDevice,
    *,
    now: datetime,
    idempotency_key: str | None = None,
) -> Grant:
    """Lease the best-fitting available device, charging the tenant's quota.

    Raises:
        NoCapacity: no available device matches.
        Unsatisfiable: no device of the fleet could ever match.
        QuotaExceeded: the tenant's quota does not admit the device.
        IdempotencyKeyReused: the key was used for a different request.
        Forbidden, InvalidRequest: the principal may not act for that user.
    """
    user_id = acting_user(principal, command.user_id)
    allocated_at, expires_at = lease_window(now, command.duration_minutes)
    lease = PendingLease(
        uuid.uuid4(), principal.tenant_id, user_id, allocated_at, expires_at, idempotency_key
    )
    try:
        async with uow:
            if idempotency_key is not None:
                first = await uow.idempotency.begin(
                    principal, idempotency_key, ALLOCATE_OPERATION, command.fingerprint(), now
                )
                if first is not None:
                    return await _replay(uow, principal, first, command.fingerprint())
            grant = await place_lease(uow, lease, command.requirements)
            if idempotency_key is not None:
                await uow.idempotency.complete(principal, idempotency_key, grant.to_record())
            await uow.commit()
    except NoCapacity:
        await check_satisfiable(uow, command.requirements)  # "never", rather than "not now"
        raise
    return grant


async def place_lease(
    uow: UnitOfWork,
    lease: PendingLease,
    requirements: DeviceRequirements,
    preferred: Sequence[uuid.UUID] = (),
) -> Grant:
    """Inside the caller's transaction: the best-fitting device the tenant's quota admits,
    claimed and leased, with its ``allocation.granted`` event.

    The tenant row stays locked to the end of the transaction: a tenant's grants serialize
    there, so a claimed device is never rolled back for quota (which would have made
    concurrent requests skip a device that ends up free). ``preferred`` devices (a batch
    plan's choice) are tried first, then the best fits.

    Raises:
        NoCapacity: no available device matches.
        QuotaExceeded: the tenant's quota does not admit any matching device.
    """
    for _ in range(CLAIM_ATTEMPTS):
        tenant, candidates, strategy = await uow.devices.placement_snapshot(
            lease.tenant_id, requirements, lease.expires_at
        )
        if tenant is None or tenant.devices_left < 1:
            raise QuotaExceeded("the tenant's device quota is used up")
        ranked = rank_best_fit(
            candidates, as_vector(requirements.minimum), as_vector(tenant.headroom), strategy
        )
        if len(candidates) and not len(ranked):
            raise QuotaExceeded(
                f"no matching device fits the tenant's remaining quota {tenant.headroom}"
            )
        ids = [*preferred] + [
            device_id
            for row in ranked
            for device_id in candidates.ids[row]  # type: ignore[attr-defined]
            if device_id not in preferred
        ]
        claimed = await uow.allocations.grant(lease, ids) if ids else None
        if claimed is not None or not ids:
            break
        # every sampled device was taken meanwhile: look again (others may still be free)
    if claimed is None:
        raise NoCapacity(f"no available device matches: {requirements.describe()}")
    device, charged = claimed
    if not charged:
        raise QuotaExceeded(f"the tenant's quota does not admit a device of {device.spec}")
    grant = Grant(lease.on(device), device)
    await uow.outbox.add([_granted_event(grant.allocation, device)])
    return grant


async def _replay(
    uow: UnitOfWork,
    principal: Principal,
    first: tuple[str, str | None, dict[str, Any] | None],
    fingerprint: str,
) -> Grant:
    """The first response to a retried request.

    Raises:
        IdempotencyKeyReused: the key was first used for another request.
    """
    operation, request_hash, result = first
    if operation != ALLOCATE_OPERATION or request_hash != fingerprint or result is None:
        raise IdempotencyKeyReused()
    allocation = await uow.allocations.get(uuid.UUID(result["allocation_id"]), scope_of(principal))
    device = await uow.devices.get(uuid.UUID(result["device_id"]))
    if allocation is None or device is None:
        raise AllocationNotFound()
    return Grant(allocation, device)


async def _end(
    uow: UnitOfWork,
    allocation: Allocation,
    status: AllocationStatus,
    reason: str,
    now: datetime,
) -> Release:
    """End one lease, whose row the caller's transaction holds: usage record, quota refund,
    device reset, events. The usage record's unique allocation id backs the row lock up."""
    ended_at = end_time(allocation, status, now)
    await uow.allocations.end(allocation.id, status, ended_at, reason)
    record = usage_record_for(
        allocation, ended_at=ended_at, end_reason=reason, record_id=uuid.uuid4()
    )
    await uow.usage.add(record, now)
    await uow.tenants.refund(allocation.tenant_id, allocation.resources)
    await uow.reservations.complete_for(allocation.id, now)
    (device,) = await uow.devices.transition(
        [allocation.device_id], DeviceStatus.ALLOCATED, DeviceStatus.RESETTING, now
    ) or (None,)
    node_id = device.node_id if device else uuid.UUID(int=0)
    await uow.outbox.add(
        [
            events.Event(
                type=events.ENDED_EVENT[status.value],
                aggregate_id=str(allocation.id),
                occurred_at=now,
                payload={
                    "allocationId": str(allocation.id),
                    "deviceId": str(allocation.device_id),
                    "tenantId": str(allocation.tenant_id),
                    "userId": allocation.user_id,
                    "endedAt": ended_at.isoformat(),
                    "reason": reason,
                    "durationSeconds": record.duration_seconds,
                    "usageRecordId": str(record.id),
                },
            ),
            events.Event(
                type=events.DEVICE_RESET_STARTED,
                aggregate_id=str(allocation.device_id),
                occurred_at=now,
                payload={"deviceId": str(allocation.device_id), "nodeId": str(node_id)},
            ),
        ]
    )
    return Release(allocation.id, allocation.device_id, node_id, record.duration_seconds, record.id)


async def release_allocation(
    uow: UnitOfWork,
    principal: Principal,
    *,
    allocation_id: uuid.UUID | None,
    device_id: uuid.UUID | None,
    now: datetime,
) -> Release:
    """End a lease on the owner's (or its tenant service's, or an admin's) request.

    Raises:
        AllocationNotFound: no active lease visible to the caller matches.
    """
    scope = scope_of(principal)
    async with uow:
        if allocation_id is not None:
            allocation = await uow.allocations.get(allocation_id, scope, lock=True)
        else:
            assert device_id is not None
            allocation = await uow.allocations.active_for_device(device_id, scope, lock=True)
        if allocation is None or allocation.status is not AllocationStatus.ACTIVE:
            raise AllocationNotFound("no active allocation visible to the caller matches")
        released = await _end(uow, allocation, AllocationStatus.RELEASED, "released", now)
        await uow.commit()
    return released


async def end_due_allocations(uow: UnitOfWork, *, now: datetime, limit: int = 500) -> list[Release]:
    """Inside the caller's transaction, end every lease whose expiry has come, and revoke
    every lease whose preemption grace has run out, each once (the rows are held)."""
    due = await uow.allocations.lock_due(now, limit)
    ended = [await _end(uow, a, AllocationStatus.EXPIRED, "expired", now) for a in due]
    for allocation, entry_id, still_waiting in await uow.allocations.lock_revocations_due(
        now, limit
    ):
        if allocation.id in {a.id for a in due}:
            continue
        if still_waiting:
            ended.append(await _end(uow, allocation, AllocationStatus.REVOKED, "preempted", now))
            continue
        # The waiter it was for got a device, left or timed out: the lease stays.
        await uow.allocations.clear_revocation(allocation.id)
        await uow.outbox.add(
            [
                events.Event(
                    events.PREEMPTION_CANCELLED,
                    str(allocation.id),
                    {
                        "allocationId": str(allocation.id),
                        "userId": allocation.user_id,
                        "tenantId": str(allocation.tenant_id),
                        "queueEntryId": str(entry_id),
                    },
                    now,
                )
            ]
        )
    return ended


async def expire_due_allocations(
    uow: UnitOfWork, *, now: datetime, limit: int = 500
) -> list[Release]:
    """End every lease whose expiry has come, each exactly once, in one transaction."""
    async with uow:
        ended = await end_due_allocations(uow, now=now, limit=limit)
        await uow.commit()
    return ended


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
