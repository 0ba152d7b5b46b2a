"""Claiming and ending leases inside a unit's transaction: the steps that allocate, the
queue's drains, batches and bookings all share."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

from placement.greedy import rank_best_fit
from placement.model import as_vector
from scheduler.domain import events
from scheduler.domain.allocations import Allocation, AllocationStatus, end_time, usage_record_for
from scheduler.domain.errors import NoCapacity, QuotaExceeded
from scheduler.domain.fleet import Device, DeviceStatus
from scheduler.domain.resources import DeviceRequirements
from scheduler.services.command_path import GrantAtCommit, Unit
from scheduler.services.commands import Grant, PendingLease, Release
from scheduler.services.ports import PlacementSnapshot

#: Fresh looks at the fleet one placement takes when concurrent requests took its picks.
CLAIM_ATTEMPTS = 3
#: Devices a grant sent with the commit may take (the best fits): each is read whole and its
#: outcome written out in advance, so a few, enough that concurrent requests rarely take all.
AT_COMMIT_CHOICES = 4


async def place_lease(
    unit: Unit,
    lease: PendingLease,
    requirements: DeviceRequirements,
    preferred: Sequence[uuid.UUID] = (),
) -> Grant:
    """Inside the unit's transaction: the best-fitting device the tenant's quota admits,
    claimed and leased, with its ``allocation.granted`` event.

    The tenant row stays locked to the end of the transaction: a tenant's grants serialize
    there, so a claimed device is never rolled back for quota (which would have made
    concurrent requests skip a device that ends up free). ``preferred`` devices (a plan's
    choice) are tried first — claimed without a read of the fleet while one still matches,
    its node's status, labels and taints checked again in the statement — then the best
    fits.

    Raises:
        NoCapacity: no available device matches.
        QuotaExceeded: the tenant's quota does not admit any matching device.
    """
    uow = unit.uow
    claimed = None
    if preferred and not requirements.tolerations:
        # a plan's device, checked again in SQL: no read of the fleet when it is still free
        claimed = await uow.allocations.grant_planned(lease, preferred, requirements)
    for _ in range(CLAIM_ATTEMPTS if claimed is None else 0):
        snapshot = await uow.devices.placement_snapshot(lease.tenant_id, requirements)
        ids = ranked_device_ids(snapshot, requirements, preferred)
        claimed = await uow.allocations.grant(lease, ids) if ids else None
        if claimed is not None or not ids:
            break
        # every sampled device was taken meanwhile: look again (others may still be free)
    if claimed is None:
        raise NoCapacity(f"no available device matches: {requirements.describe()}")
    device, charged = claimed
    if not charged:
        raise QuotaExceeded(f"the tenant's quota does not admit a device of {device.spec}")
    grant, event = granted(lease, device)
    unit.emit(event)
    return grant


async def place_lease_at_commit(
    unit: Unit, lease: PendingLease, requirements: DeviceRequirements
) -> GrantAtCommit[Grant]:
    """``place_lease`` in the round trip of the commit: read the tenant (not locked) and the
    candidates, then send the grant of the best few devices (read whole) with the commit;
    the tenant row is held only inside that last round trip. When this process read the
    candidates for alike requests lately, nothing is read: the grant, ranked by those, is
    the only round trip (its statement checks the quota and that each device still
    matches). Shared candidates that offer nothing this tenant may take send a fresh read of
    its own. The commit fails with ``ClaimContended`` if others took all of them (or a kept
    read's grant was refused for any reason: the command then reads), or
    ``QuotaExceeded``.

    Raises:
        NoCapacity: no available device matches.
        QuotaExceeded: the tenant's quota does not admit any matching device.
    """
    devices = unit.uow.devices
    snapshot = await devices.placement_snapshot(
        lease.tenant_id, requirements, lock_tenant=False, detailed=AT_COMMIT_CHOICES, recent=True
    )
    chosen = _best_few(snapshot, requirements)
    if not chosen and snapshot.shared:
        snapshot = await devices.placement_snapshot(
            lease.tenant_id, requirements, lock_tenant=False, detailed=AT_COMMIT_CHOICES
        )
        chosen = _best_few(snapshot, requirements)
    if not chosen:
        raise NoCapacity(f"no available device matches: {requirements.describe()}")
    granted_device = await unit.uow.allocations.grant_at_commit(
        lease,
        [d.id for d in chosen],
        requirements if snapshot.shared else None,
        ranked_by=snapshot.strategy if snapshot.tenant is None else None,
    )
    options = {}
    for device in chosen:
        grant, event = granted(lease, replace(device, status=DeviceStatus.ALLOCATED))
        options[device.id] = (grant, (event,))
    return GrantAtCommit(lease.id, options, granted_device)


def _best_few(snapshot: PlacementSnapshot, requirements: DeviceRequirements) -> list[Device]:
    """The best ``AT_COMMIT_CHOICES`` devices of the snapshot, read whole; none when a
    shared snapshot's quota check fails (a fresh read decides then)."""
    try:
        ids = ranked_device_ids(snapshot, requirements)
    except QuotaExceeded:
        if snapshot.shared:
            return []
        raise
    return [snapshot.devices[i] for i in ids[:AT_COMMIT_CHOICES] if i in snapshot.devices]


def ranked_device_ids(
    snapshot: PlacementSnapshot,
    requirements: DeviceRequirements,
    preferred: Sequence[uuid.UUID] = (),
) -> list[uuid.UUID]:
    """The ids of the snapshot's candidates the tenant's quota admits, ``preferred`` first
    (those the snapshot offers: a plan's device whose node left service since is not), then
    best fit first.

    Raises:
        QuotaExceeded: the quota admits none of them.
    """
    tenant, candidates = snapshot.tenant, snapshot.candidates
    unread = tenant is None and snapshot.shared  # a kept read: its grant checks the quota
    if not unread and (tenant is None or tenant.devices_left < 1):
        raise QuotaExceeded("the tenant's device quota is used up")
    ranked = rank_best_fit(
        candidates,
        as_vector(requirements.minimum),
        None if tenant is None else as_vector(tenant.headroom),
        snapshot.strategy,
    )
    if len(candidates) and not len(ranked):
        raise QuotaExceeded(
            f"no matching device fits the tenant's remaining quota {tenant.headroom}"
        )
    best = [device_id for row in ranked for device_id in candidates.ids[row]]  # type: ignore[attr-defined]
    # a preferred device only as the read offers it: matching, free, on a ready node
    offered = set(best)
    first = [device_id for device_id in preferred if device_id in offered]
    return first + [device_id for device_id in best if device_id not in first]


def granted(lease: PendingLease, device: Device) -> tuple[Grant, events.AllocationGranted]:
    """The grant of ``lease`` on (the claimed) ``device`` and its event."""
    allocation = lease.on(device)
    return Grant(allocation, device), events.AllocationGranted(
        occurred_at=allocation.allocated_at,
        allocation_id=allocation.id,
        device_id=device.id,
        node_id=device.node_id,
        tenant_id=allocation.tenant_id,
        user_id=allocation.user_id,
        expires_at=allocation.expires_at,
    )


async def end_lease(
    unit: Unit,
    allocation: Allocation,
    status: AllocationStatus,
    reason: str,
    node_id: uuid.UUID | None = None,
) -> Release:
    """End one lease, whose row the unit's transaction holds: usage record, quota refund,
    events, and the device's reset and a queue wake once committed. The usage record's
    unique allocation id backs the row lock up. Given the device's ``node_id`` (read with
    the lease), it reads nothing: every statement goes with the commit."""
    uow, now = unit.uow, unit.now
    ended_at = end_time(allocation, status, now)
    await uow.allocations.end(allocation.id, status, ended_at, reason)
    record = usage_record_for(
        allocation, ended_at=ended_at, end_reason=reason, record_id=uuid.uuid4()
    )
    await uow.usage.add(record, now)
    await uow.tenants.refund(allocation.tenant_id, allocation.resources)
    await uow.reservations.complete_for(allocation.id, now)
    moved = [allocation.device_id], DeviceStatus.ALLOCATED, DeviceStatus.RESETTING, now
    if node_id is None:
        (device,) = await uow.devices.transition(*moved) or (None,)
        node_id = device.node_id if device else None
    else:
        await uow.devices.send_transition(*moved)  # the node resets it only if it moved
    shown_node = node_id or uuid.UUID(int=0)  # none: its device did not move to resetting
    unit.emit(
        events.ENDED_EVENT[status.value](
            occurred_at=now,
            allocation_id=allocation.id,
            device_id=allocation.device_id,
            tenant_id=allocation.tenant_id,
            user_id=allocation.user_id,
            ended_at=ended_at,
            reason=reason,
            duration_seconds=record.duration_seconds,
            usage_record_id=record.id,
        ),
        events.DeviceResetStarted(
            occurred_at=now, device_id=allocation.device_id, node_id=shown_node
        ),
    )
    if node_id is not None:
        unit.effects.reset(node_id, allocation.device_id)
    unit.effects.wake(tenant=allocation.tenant_id)  # its freed quota may admit its waiters
    return Release(
        allocation.id, allocation.device_id, shown_node, record.duration_seconds, record.id
    )


async def end_due_allocations(unit: Unit, *, limit: int = 500) -> list[Release]:
    """Inside the unit's transaction, end every lease whose expiry has come, and revoke
    every lease whose preemption grace has run out, each once (the rows are held)."""
    uow, now = unit.uow, unit.now
    due = await uow.allocations.lock_due(now, limit)
    ended = [await end_lease(unit, a, AllocationStatus.EXPIRED, "expired") for a in due]
    for allocation, entry_id, still_waiting in await uow.allocations.lock_revocations_due(
        now, limit
    ):
        if allocation.id in {a.id for a in due}:
            continue
        if still_waiting:
            ended.append(await end_lease(unit, allocation, AllocationStatus.REVOKED, "preempted"))
            continue
        # The waiter it was for got a device, left or timed out: the lease stays.
        await uow.allocations.clear_revocation(allocation.id)
        unit.emit(
            events.PreemptionCancelled(
                occurred_at=now,
                allocation_id=allocation.id,
                user_id=allocation.user_id,
                tenant_id=allocation.tenant_id,
                queue_entry_id=entry_id,
            )
        )
    return ended
