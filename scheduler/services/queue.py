"""Use cases of the wait queue: join, look, cancel, drain (grant waiters in priority order)
and time out."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from scheduler.domain import events
from scheduler.domain.allocations import Allocation, lease_window
from scheduler.domain.errors import (
    InfrastructureError,
    InvalidRequest,
    NoCapacity,
    QueueEntryNotFound,
    QueueEntryNotWaiting,
    QueueFull,
    QuotaExceeded,
    TenantNotFound,
)
from scheduler.domain.fleet import DeviceStatus
from scheduler.domain.identity import (
    SYSTEM,
    Principal,
    Scope,
    acting_user,
    require_admin,
    scope_of,
)
from scheduler.domain.queueing import (
    QueueEntry,
    QueuePolicy,
    QueueStatus,
    class_key,
    ordered,
    overuse_by_tenant,
    priority,
    queue_window,
    wait_views,
)
from scheduler.domain.resources import DeviceRequirements
from scheduler.services.command_path import Unit, run_unit
from scheduler.services.commands import Count, Grant, Page, PendingLease
from scheduler.services.leases import place_lease
from scheduler.services.planning import (
    PlacementSolver,
    PlanRequest,
    check_satisfiable,
    dry_run,
    weights,
)
from scheduler.services.ports import UnitOfWork, UnitOfWorkFactory

logger = logging.getLogger(__name__)

USAGE_WINDOW = timedelta(hours=24)
#: Time a drain's placement plan may take (the drain holds no lock meanwhile).
DRAIN_SOLVE_SECONDS = 0.2
EVERYONE = Scope(None, None)


@dataclass(frozen=True, slots=True)
class JoinQueue:
    user_id: str | None
    duration_minutes: int
    requirements: DeviceRequirements
    max_wait_minutes: int


@dataclass(frozen=True, slots=True)
class Queued:
    """A request waiting in the queue (the answer to a join, or to an allocate that queued)."""

    entry: QueueEntry


@dataclass(frozen=True, slots=True)
class CancelQueueEntry:
    entry_id: uuid.UUID
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class DrainQueue:
    """Drain now, granting at most ``max_grants`` entries (an admin's nudge)."""

    max_grants: int


@dataclass(frozen=True, slots=True)
class QueueOrder:
    """The waiting entries, first to serve first, as of ``at``."""

    entries: list[QueueEntry]
    priorities: dict[uuid.UUID, float]
    at: datetime


def _about(entry: QueueEntry) -> dict[str, Any]:
    """The fields every queue event carries."""
    return {"queue_entry_id": entry.id, "tenant_id": entry.tenant_id, "user_id": entry.user_id}


async def enqueue(command: JoinQueue, unit: Unit, *, satisfiable: bool = False) -> Queued:
    """Put a request in the wait queue, with its tenant's tier; the queue drains once the
    unit commits (it may be granted at once).

    Raises:
        InvalidRequest: duration or wait out of range, or a service token without userId.
        Forbidden: a user token acting for somebody else.
        QueueFull: the tenant's or the global cap of waiting entries is reached.
        Unsatisfiable: no device of the fleet could ever serve the request (checked unless
            the caller did already: ``satisfiable``).
    """
    uow, now, config = unit.uow, unit.now, unit.config
    user_id = acting_user(unit.principal, command.user_id)
    deadline = queue_window(now, command.duration_minutes, command.max_wait_minutes)
    if not satisfiable:
        await check_satisfiable(uow, command.requirements)
    tenant = await uow.tenants.lock(unit.principal.tenant_id)  # serializes the tenant's cap
    if tenant is None:
        raise TenantNotFound()
    mine, total = await uow.queue.count_waiting(tenant.id)
    limits = config.queue_limits
    if mine >= limits.per_tenant:
        raise QueueFull(f"the tenant already has {mine} waiting entries (cap {limits.per_tenant})")
    if total >= limits.total:
        raise QueueFull(f"the queue holds {total} waiting entries (cap {limits.total})")
    entry = QueueEntry(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        user_id=user_id,
        tier=tenant.tier,
        duration_minutes=command.duration_minutes,
        requirements=command.requirements,
        status=QueueStatus.WAITING,
        submitted_at=now,
        deadline_at=deadline,
    )
    await uow.queue.add(entry)
    unit.emit(events.QueueJoined(occurred_at=now, tier=entry.tier, **_about(entry)))
    unit.effects.wake(new_entries=True)
    return Queued(entry)


async def join_queue(command: JoinQueue, unit: Unit) -> Queued:
    """The handler of ``POST /scheduler/queue/join`` (see ``enqueue``)."""
    return await enqueue(command, unit)


async def queue_order(uow: UnitOfWork, *, now: datetime, policy: QueuePolicy) -> QueueOrder:
    """The waiting entries in the order the queue serves them."""
    async with uow:
        waiting = await uow.queue.waiting()
        if not waiting:  # the common case: nothing to order, no usage to weigh
            return QueueOrder([], {}, now)
        usage = await uow.queue.recent_usage(now, policy.usage_half_life, USAGE_WINDOW)
    overuse = overuse_by_tenant(usage, {e.tenant_id for e in waiting})
    entries = ordered(waiting, now=now, policy=policy, overuse=overuse)
    priorities = {
        e.id: priority(e, now=now, policy=policy, overuse=overuse.get(e.tenant_id, 0.0))
        for e in entries
    }
    return QueueOrder(entries, priorities, now)


async def refresh_views(
    uow_factory: UnitOfWorkFactory, order: QueueOrder, *, reset: timedelta
) -> set[uuid.UUID]:
    """Store every waiting entry's view, as of ``order`` (a drain's), on its row: reads of
    the queue are then one lookup each, never a reordering. One read of the devices per
    entry class, one of the tenants' quota, one write. Returns the devices some waiter
    could take."""
    if not order.entries:
        async with uow_factory() as uow:
            await uow.queue.store_views({})  # announces that nobody waits
            await uow.commit()
        return set()
    now = order.at
    classes = {class_key(e.requirements): e.requirements for e in order.entries}
    async with uow_factory() as uow:
        devices = {
            key: [
                (device_id, _free_at(status, expires_at, now, reset))
                for device_id, status, expires_at in await uow.devices.matching_states(wanted)
            ]
            for key, wanted in classes.items()
        }
        tenants = {e.tenant_id for e in order.entries}
        quota_left = await uow.tenants.with_devices_left(list(tenants))
        views = wait_views(
            order.entries,
            order.priorities,
            devices,
            {t: t in quota_left for t in tenants},
            now=now,
            reset=reset,
        )
        await uow.queue.store_views(views)
        await uow.commit()
    return {device_id for matching in devices.values() for device_id, _ in matching}


def _free_at(
    status: DeviceStatus, expires_at: datetime | None, now: datetime, reset: timedelta
) -> datetime:
    if status is DeviceStatus.ALLOCATED and expires_at is not None:
        return expires_at + reset
    if status in (DeviceStatus.RESETTING, DeviceStatus.PROVISIONING):
        return now + reset
    return now


async def get_entry(uow: UnitOfWork, principal: Principal, entry_id: uuid.UUID) -> QueueEntry:
    """Raises:
    QueueEntryNotFound: no such entry is visible to the caller.
    """
    async with uow:
        entry = await uow.queue.get(entry_id, scope_of(principal))
    if entry is None:
        raise QueueEntryNotFound()
    return entry


async def list_entries(
    uow: UnitOfWork, principal: Principal, status: str | None, limit: int, cursor: str | None
) -> Page[QueueEntry]:
    async with uow:
        return await uow.queue.list(scope_of(principal), status, limit, cursor)


async def queue_stats(uow: UnitOfWork, principal: Principal) -> dict[str, Any]:
    async with uow:
        return await uow.queue.stats(scope_of(principal))


async def cancel_entry(command: CancelQueueEntry, unit: Unit) -> QueueEntry:
    """Raises:
    QueueEntryNotFound: no such entry is visible to the caller.
    QueueEntryNotWaiting: it was already fulfilled, cancelled or timed out.
    """
    uow, now = unit.uow, unit.now
    scope = scope_of(unit.principal)
    entry = await uow.queue.get(command.entry_id, scope)
    if entry is None:
        raise QueueEntryNotFound()
    held = await uow.queue.lock_waiting(command.entry_id, scope)
    if held is None:
        raise QueueEntryNotWaiting(f"the entry is {entry.status.value}")
    await uow.queue.end(held.id, QueueStatus.CANCELLED, now, command.reason)
    unit.emit(events.QueueCancelled(occurred_at=now, reason=command.reason, **_about(held)))
    ended = replace(held, status=QueueStatus.CANCELLED, ended_at=now, reason=command.reason)
    return replace(ended, view=None)


async def cancel_entries_of(unit: Unit, holder: Scope, reason: str) -> int:
    """Cancel every waiting entry of a user (in every tenant) or of a tenant; how many."""
    held = await unit.uow.queue.lock_waiting_of(holder)
    for entry in held:
        await unit.uow.queue.end(entry.id, QueueStatus.CANCELLED, unit.now, reason)
        unit.emit(events.QueueCancelled(occurred_at=unit.now, reason=reason, **_about(entry)))
    return len(held)


async def drain_now(command: DrainQueue, unit: Unit) -> Count:
    """An admin's drain, run by the queue's dispatcher while the unit holds the key.

    Raises:
        Forbidden: the caller is not an admin.
    """
    require_admin(unit.principal)
    return Count(await unit.queue.drain(command.max_grants))


@dataclass(frozen=True, slots=True)
class DrainResult:
    granted: list[tuple[QueueEntry, Grant]]
    order: QueueOrder


async def drain_queue(
    uow_factory: UnitOfWorkFactory,
    *,
    now: datetime,
    policy: QueuePolicy,
    max_grants: int | None = None,
    solver: PlacementSolver | None = None,
) -> DrainResult:
    """Grant waiting entries in priority order while devices fit them.

    With a ``solver``, one placement plan over every waiting entry (weighted by priority, the
    strategy's score second) picks each entry's device; the grants then claim those devices
    first, falling back to the best fit when another request took one meanwhile.

    Each grant is its own transaction that holds the entry (``SKIP LOCKED``), so two drains
    running at once never grant one entry or one device twice. An entry that fits no
    available device is skipped, and so is every later entry asking for the same thing.
    """
    order = await queue_order(uow_factory(), now=now, policy=policy)
    entries = []
    for entry in order.entries:
        problem = entry.requirements.out_of_bounds()
        if problem is None:
            entries.append(entry)
        else:
            await fail_entry(uow_factory, entry, f"invalid_request: {problem}", now=now)
    planned = await _plan(uow_factory, entries, order, solver) if solver is not None else {}
    granted: list[tuple[QueueEntry, Grant]] = []
    exhausted: set[str] = set()
    for entry in entries:
        if max_grants is not None and len(granted) >= max_grants:
            break
        wanted = class_key(entry.requirements)
        if wanted in exhausted:
            continue
        try:
            preferred = [planned[entry.id]] if entry.id in planned else []
            grant = await _grant_entry(uow_factory, entry, now=now, preferred=preferred)
        except NoCapacity:
            if policy.may_preempt(entry.tier):
                await preempt_for(uow_factory, entry, now=now, policy=policy)
            else:
                exhausted.add(wanted)
            continue
        except QuotaExceeded:
            continue
        except InvalidRequest as refusal:  # the entry itself cannot be served: it fails
            await fail_entry(uow_factory, entry, f"{refusal.code}: {refusal.detail}", now=now)
            continue
        except InfrastructureError:
            raise  # every later grant would fail too; the next wake drains again
        except Exception:
            logger.exception("queue entry %s could not be granted; skipped", entry.id)
            continue
        if grant is not None:
            granted.append((entry, grant))
    return DrainResult(granted, order)


async def _plan(
    uow_factory: UnitOfWorkFactory,
    entries: list[QueueEntry],
    order: QueueOrder,
    solver: PlacementSolver,
) -> dict[uuid.UUID, uuid.UUID]:
    """The placement plan's device for each entry (nothing when planning fails: the grants
    then take the best fit, so a plan is an optimization, never a condition)."""
    if len(entries) <= 1:
        return {}
    requests = [
        PlanRequest(e.id, e.requirements, w, str(e.tenant_id))
        for e, w in zip(entries, weights([order.priorities[e.id] for e in entries]), strict=True)
    ]
    try:
        chosen = await dry_run(
            uow_factory, SYSTEM, requests, solver=solver, max_time_seconds=DRAIN_SOLVE_SECONDS
        )
    except InfrastructureError:
        raise
    except Exception:
        logger.exception("the drain's placement plan failed; granting by best fit")
        return {}
    return {uuid.UUID(str(k)): uuid.UUID(str(v)) for k, v in chosen.assignments.items()}


async def fail_entry(
    uow_factory: UnitOfWorkFactory, entry: QueueEntry, reason: str, *, now: datetime
) -> bool:
    """Take a waiting entry that can never be served out of the queue, with its reason."""

    async def fail(unit: Unit) -> bool:
        held = await unit.uow.queue.lock_waiting(entry.id, EVERYONE)
        if held is None:
            return False
        await unit.uow.queue.end(entry.id, QueueStatus.FAILED, now, reason)
        unit.emit(events.QueueFailed(occurred_at=now, reason=reason, **_about(held)))
        return True

    failed = await run_unit(uow_factory, fail, now=now)
    if failed:
        logger.warning("queue entry %s failed: %s", entry.id, reason)
    return failed


async def _grant_entry(
    uow_factory: UnitOfWorkFactory,
    entry: QueueEntry,
    *,
    now: datetime,
    preferred: list[uuid.UUID],
) -> Grant | None:
    async def grant(unit: Unit) -> Grant | None:
        held = await unit.uow.queue.lock_waiting(entry.id, EVERYONE)
        if held is None:
            return None  # fulfilled, cancelled or timed out meanwhile, or another drain has it
        allocated_at, expires_at = lease_window(now, held.duration_minutes)
        lease = PendingLease(uuid.uuid4(), held.tenant_id, held.user_id, allocated_at, expires_at)
        granted = await place_lease(unit, lease, held.requirements, preferred)
        await unit.uow.queue.fulfil(held.id, granted.allocation.id, now)
        unit.emit(
            events.QueueFulfilled(
                occurred_at=now,
                allocation_id=granted.allocation.id,
                device_id=granted.device.id,
                waited_seconds=round((now - held.submitted_at).total_seconds(), 3),
                **_about(held),
            )
        )
        return granted

    return await run_unit(uow_factory, grant, now=now)


async def preempt_for(
    uow_factory: UnitOfWorkFactory, entry: QueueEntry, *, now: datetime, policy: QueuePolicy
) -> Allocation | None:
    """Mark one lease of a preemptible tier, on a device that fits ``entry``, for revocation
    after the grace period, with a notice to its owner; at most one per waiting entry.
    The housekeeper revokes it when the grace runs out (if the entry still waits)."""

    async def mark(unit: Unit) -> Allocation | None:
        uow = unit.uow
        held = await uow.queue.lock_waiting(entry.id, EVERYONE)
        if held is None or await uow.allocations.preemption_pending(held.id):
            return None
        victim = await uow.allocations.find_preemptible(
            held.requirements, sorted(policy.preemptible_tiers), exclude_tenant=held.tenant_id
        )
        if victim is None:
            return None
        revoke_at = now + policy.preemption_grace
        await uow.allocations.mark_for_revocation(victim.id, revoke_at, held.id)
        unit.emit(
            events.PreemptionNoticed(
                occurred_at=now,
                allocation_id=victim.id,
                device_id=victim.device_id,
                tenant_id=victim.tenant_id,
                user_id=victim.user_id,
                revoke_at=revoke_at,
                queue_entry_id=held.id,
                reason=f"a {held.tier} request needs the device",
            )
        )
        return victim

    return await run_unit(uow_factory, mark, now=now)


async def time_out_overdue_entries(unit: Unit, *, limit: int = 500) -> int:
    """Inside the unit's transaction: every waiting entry past its deadline times out,
    each once (the rows are held)."""
    overdue = await unit.uow.queue.lock_overdue(unit.now, limit)
    for entry in overdue:
        await unit.uow.queue.end(entry.id, QueueStatus.TIMED_OUT, unit.now, "max_wait_exceeded")
        unit.emit(
            events.QueueTimedOut(
                occurred_at=unit.now, deadline_at=entry.deadline_at, **_about(entry)
            )
        )
    return len(overdue)
