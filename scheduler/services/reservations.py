"""Use cases of reservations: book a device for a window, move, cancel, and the
housekeeper's side: reminders, pre-warm and activation at the start second."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from placement.greedy import rank_best_fit
from placement.model import as_vector
from scheduler.domain import events
from scheduler.domain.allocations import AllocationStatus
from scheduler.domain.errors import (
    BookingCapReached,
    DeviceNotFound,
    DeviceNotSchedulable,
    NoCapacity,
    QuotaExceeded,
    ReservationConflict,
    ReservationNotActive,
    ReservationNotFound,
    ReservationNotPending,
    TenantNotFound,
)
from scheduler.domain.fleet import DeviceStatus, NodeStatus
from scheduler.domain.identity import Principal, Scope, acting_user, scope_of
from scheduler.domain.reservations import (
    BookingRules,
    Reservation,
    ReservationStatus,
    booking_window,
)
from scheduler.domain.resources import DeviceRequirements
from scheduler.services.command_path import Unit
from scheduler.services.commands import Grant, Page, PendingLease
from scheduler.services.leases import end_lease, place_lease
from scheduler.services.planning import check_satisfiable
from scheduler.services.ports import UnitOfWork

#: Devices one booking tries to lock before it reports a conflict.
BOOKING_ATTEMPTS = 16
#: How long past its start a booking waits for its device to finish a reset.
READYING_GRACE = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Reserve:
    user_id: str | None
    start_time: datetime
    duration_minutes: int
    requirements: DeviceRequirements
    device_id: uuid.UUID | None
    remind_before_minutes: int
    #: Minutes after the start its user has to check in (``None``: the default rule).
    check_in_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class UpdateReservation:
    """Move or resize a pending booking (``None``: keep)."""

    reservation_id: uuid.UUID
    start_time: datetime | None = None
    duration_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class CancelReservation:
    reservation_id: uuid.UUID
    reason: str | None = None


def _about(r: Reservation) -> dict[str, Any]:
    """The fields every reservation event carries."""
    return {
        "reservation_id": r.id,
        "tenant_id": r.tenant_id,
        "user_id": r.user_id,
        "device_id": r.device_id,
        "start_time": r.start_time,
        "end_time": r.end_time,
    }


async def _check_schedulable(
    uow: UnitOfWork, device_id: uuid.UUID, requirements: DeviceRequirements
) -> None:
    """A named device must take bookings as allocate would lease it: in service, on a ready
    node whose taints the request tolerates.

    Raises:
        DeviceNotFound: no such device.
        DeviceNotSchedulable: it is retired or failed, its node is not ready, or tainted.
    """
    placement = await uow.reservations.device_placement(device_id)
    if placement is None:
        raise DeviceNotFound()
    status, node_status, taints = placement
    if status in (DeviceStatus.RETIRED, DeviceStatus.FAILED):
        raise DeviceNotSchedulable(f"the device is {status.value}")
    if node_status is not NodeStatus.READY:
        raise DeviceNotSchedulable(f"the device's node is {node_status.value}")
    blocking = [t for t in taints if not t.is_tolerated_by(requirements.tolerations)]
    if blocking:
        names = ", ".join(f"{t.key}={t.value}:{t.effect}" for t in blocking)
        raise DeviceNotSchedulable(
            f"the device's node has taints the request does not tolerate: {names}"
        )


async def _check_holdings(
    unit: Unit, window: tuple[datetime, datetime, datetime], exclude: uuid.UUID | None = None
) -> None:
    """A booking counts against its tenant's quota for its window: the tenant may not hold
    more overlapping bookings and leases than ``maxDevices``, nor more pending bookings than
    the cap. The tenant's row is held: its bookings serialize here.

    Raises:
        QuotaExceeded: the window would hold more devices than the quota.
        BookingCapReached: the tenant holds as many pending bookings as it may.
        TenantNotFound: no such tenant.
    """
    _, end, prewarm = window
    tenant = await unit.uow.tenants.lock(unit.principal.tenant_id)
    if tenant is None:
        raise TenantNotFound()
    overlapping, pending = await unit.uow.reservations.tenant_holdings(
        tenant.id, prewarm, end, exclude
    )
    cap = unit.config.booking_rules.max_pending
    if pending >= cap:
        raise BookingCapReached(f"the tenant already holds {pending} pending bookings (cap {cap})")
    if overlapping + 1 > tenant.max_devices:
        raise QuotaExceeded(
            f"the tenant holds {overlapping} devices or bookings during that window"
            f" (maxDevices {tenant.max_devices})"
        )


async def _book(
    uow: UnitOfWork,
    requirements: DeviceRequirements,
    device_id: uuid.UUID | None,
    window: tuple[datetime, datetime, datetime],
    reset: timedelta,
    *,
    viewer: Scope,
    exclude: uuid.UUID | None = None,
    hold: bool = True,
) -> uuid.UUID:
    """Inside the caller's transaction: a device free for the window, held (its row lock
    serializes every booking, lease and extension of it) and checked under that lock
    (``hold=False``: checked only, nothing locked, for a look before booking).

    A conflict names the windows of ``viewer``'s tenant only (an admin's: all); the others
    are counted, never shown.

    Raises:
        DeviceNotFound: the named device does not exist.
        DeviceNotSchedulable: the named device takes no bookings.
        ReservationConflict: no matching device is free for the window.
    """
    _, end, prewarm = window
    if device_id is not None:
        await _check_schedulable(uow, device_id, requirements)
        ids = [device_id]
    else:
        candidates = await uow.reservations.free_candidates(requirements, prewarm, end, reset)
        ranked = rank_best_fit(candidates, as_vector(requirements.minimum))
        ids = [i for row in ranked for i in candidates.ids[row]][:BOOKING_ATTEMPTS]  # type: ignore[attr-defined]
    for candidate in ids:
        if hold and not await uow.reservations.lock_device(candidate):
            if device_id is not None:
                raise DeviceNotFound()
            continue
        if not await uow.reservations.conflicts([candidate], prewarm, end, reset, exclude):
            return candidate
    scope = (
        ids if device_id is not None else await uow.reservations.matching_device_ids(requirements)
    )
    conflicts = await uow.reservations.conflicts(scope, prewarm, end, reset, exclude)
    visible = [(d, s, e) for d, s, e, tenant in conflicts if viewer.tenant_id in (None, tenant)]
    others = len(conflicts) - len(visible)
    raise ReservationConflict(
        "no matching device is free for that window"
        + (f" ({others} windows of other tenants)" if others else ""),
        tuple((str(d), s.isoformat(), e.isoformat()) for d, s, e in visible),
    )


async def create_reservation(command: Reserve, unit: Unit) -> Reservation:
    """Book the best-fitting device free for the whole window (or the named one).

    Raises:
        InvalidRequest: a start in the past or beyond the horizon, a bad duration.
        ReservationConflict: no matching device is free for the window.
        DeviceNotFound: the named device does not exist.
        Unsatisfiable: no device of the fleet could ever serve the request.
    """
    uow, now, config = unit.uow, unit.now, unit.config
    user_id = acting_user(unit.principal, command.user_id)
    window = booking_window(
        command.start_time, command.duration_minutes, now=now, rules=config.booking_rules
    )
    if command.device_id is None:
        await check_satisfiable(uow, command.requirements)
    await _check_holdings(unit, window)
    device_id = await _book(
        uow,
        command.requirements,
        command.device_id,
        window,
        config.reset,
        viewer=scope_of(unit.principal),
    )
    reservation = Reservation(
        id=uuid.uuid4(),
        tenant_id=unit.principal.tenant_id,
        user_id=user_id,
        device_id=device_id,
        status=ReservationStatus.PENDING,
        start_time=window[0],
        end_time=window[1],
        prewarm_at=window[2],
        remind_before_minutes=command.remind_before_minutes,
        requirements=command.requirements,
        created_at=now,
        pinned=command.device_id is not None,
        check_in_minutes=(
            config.booking_rules.check_in_minutes
            if command.check_in_minutes is None
            else command.check_in_minutes
        ),
    )
    await uow.reservations.add(reservation)
    unit.emit(events.ReservationCreated(occurred_at=now, **_about(reservation)))
    return reservation


async def check_conflict(
    uow: UnitOfWork,
    principal: Principal,
    command: Reserve,
    *,
    now: datetime,
    rules: BookingRules,
    reset: timedelta,
) -> tuple[uuid.UUID | None, tuple[tuple[str, str, str], ...]]:
    """Whether the booking would succeed now: the device it would get, or the conflicts the
    caller may see (its tenant's windows). A look: it holds no lock.

    Raises:
        DeviceNotFound, DeviceNotSchedulable: the named device cannot be booked at all.
    """
    window = booking_window(command.start_time, command.duration_minutes, now=now, rules=rules)
    async with uow:
        try:
            device = await _book(
                uow,
                command.requirements,
                command.device_id,
                window,
                reset,
                viewer=scope_of(principal),
                hold=False,
            )
        except ReservationConflict as conflict:
            return None, conflict.conflicts
    return device, ()


async def update_reservation(command: UpdateReservation, unit: Unit) -> Reservation:
    """Move or resize a pending booking, with the same checks as a new one (it keeps its
    device when that is free for the new window).

    Raises:
        ReservationNotFound, ReservationNotPending, ReservationConflict, InvalidRequest.
    """
    uow, now, config = unit.uow, unit.now, unit.config
    current = await uow.reservations.get(
        command.reservation_id, scope_of(unit.principal), lock=True
    )
    if current is None:
        raise ReservationNotFound()
    if current.status is not ReservationStatus.PENDING:
        raise ReservationNotPending(f"the reservation is {current.status.value}")
    window = booking_window(
        command.start_time or current.start_time,
        command.duration_minutes or current.duration_minutes,
        now=now,
        rules=config.booking_rules,
    )
    await _check_holdings(unit, window, exclude=current.id)
    viewer = scope_of(unit.principal)
    try:
        device_id = await _book(
            uow,
            current.requirements,
            current.device_id,
            window,
            config.reset,
            viewer=viewer,
            exclude=current.id,
        )
    except ReservationConflict:
        if current.pinned:
            raise
        device_id = await _book(
            uow, current.requirements, None, window, config.reset, viewer=viewer, exclude=current.id
        )
    await uow.reservations.update_window(current.id, device_id, *window)
    moved = replace(
        current, device_id=device_id, start_time=window[0], end_time=window[1], prewarm_at=window[2]
    )
    unit.emit(events.ReservationUpdated(occurred_at=now, **_about(moved)))
    return moved


async def cancel_reservation(command: CancelReservation, unit: Unit) -> Reservation:
    """Raises:
    ReservationNotFound: no such reservation is visible to the caller.
    ReservationNotPending: it already started or ended.
    """
    uow, now = unit.uow, unit.now
    current = await uow.reservations.get(
        command.reservation_id, scope_of(unit.principal), lock=True
    )
    if current is None:
        raise ReservationNotFound()
    if current.status is not ReservationStatus.PENDING:
        raise ReservationNotPending(f"the reservation is {current.status.value}")
    await uow.reservations.end(current.id, ReservationStatus.CANCELLED, now, command.reason)
    unit.emit(
        events.ReservationCancelled(occurred_at=now, reason=command.reason, **_about(current))
    )
    return replace(current, status=ReservationStatus.CANCELLED, ended_at=now, reason=command.reason)


async def cancel_bookings_of(unit: Unit, holder: Scope, reason: str) -> int:
    """Cancel every booking not started yet of a user (in every tenant) or of a tenant;
    how many."""
    held = await unit.uow.reservations.lock_pending_of(holder)
    for booking in held:
        await unit.uow.reservations.end(booking.id, ReservationStatus.CANCELLED, unit.now, reason)
        unit.emit(
            events.ReservationCancelled(occurred_at=unit.now, reason=reason, **_about(booking))
        )
    return len(held)


@dataclass(frozen=True, slots=True)
class CheckIn:
    reservation_id: uuid.UUID


async def check_in(command: CheckIn, unit: Unit) -> Reservation:
    """Its user took the started booking's device: it is theirs until the booking's end (a
    booking asking for a check-in that gets none is a no-show). A second check-in changes
    nothing.

    Raises:
        ReservationNotFound: no such reservation is visible to the caller.
        ReservationNotActive: it has not started yet, or has ended.
    """
    uow, now = unit.uow, unit.now
    current = await uow.reservations.get(
        command.reservation_id, scope_of(unit.principal), lock=True
    )
    if current is None:
        raise ReservationNotFound()
    if current.status is not ReservationStatus.ACTIVE:
        raise ReservationNotActive(f"the reservation is {current.status.value}")
    if current.checked_in_at is not None:
        return current
    await uow.reservations.check_in(current.id, now)
    unit.emit(
        events.ReservationCheckedIn(
            occurred_at=now, allocation_id=current.allocation_id, **_about(current)
        )
    )
    return replace(current, checked_in_at=now)


async def end_no_shows(unit: Unit, *, limit: int = 100) -> int:
    """Started bookings whose user did not check in within their window become no-shows:
    their lease is revoked (reason ``no_show``, billed to now) and the device reset for
    others. Each lease is held before its booking, as a lease's end holds them; a booking
    checked in or ended meanwhile is left. How many were no-shows."""
    uow, now = unit.uow, unit.now
    ended = 0
    for candidate in await uow.reservations.no_shows(now, limit):
        held = None
        if candidate.allocation_id is not None:
            held = await uow.allocations.lock_with_node(
                Scope(None, None), allocation_id=candidate.allocation_id
            )
        booking = await uow.reservations.get(candidate.id, Scope(None, None), lock=True)
        if (
            booking is None
            or booking.status is not ReservationStatus.ACTIVE
            or booking.checked_in_at is not None
        ):
            continue
        await uow.reservations.end(booking.id, ReservationStatus.NO_SHOW, now, "no_show")
        if held is not None and held[0].status is AllocationStatus.ACTIVE:
            await end_lease(unit, held[0], AllocationStatus.REVOKED, "no_show", held[1])
        unit.emit(
            events.ReservationNoShow(
                occurred_at=now, allocation_id=booking.allocation_id, **_about(booking)
            )
        )
        ended += 1
    return ended


async def get_reservation(
    uow: UnitOfWork, principal: Principal, reservation_id: uuid.UUID
) -> Reservation:
    """Raises:
    ReservationNotFound: no such reservation is visible to the caller.
    """
    async with uow:
        found = await uow.reservations.get(reservation_id, scope_of(principal))
    if found is None:
        raise ReservationNotFound()
    return found


async def list_reservations(
    uow: UnitOfWork,
    principal: Principal,
    *,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> Page[Reservation]:
    async with uow:
        return await uow.reservations.list(scope_of(principal), status, since, until, limit, cursor)


async def reservation_stats(
    uow: UnitOfWork, principal: Principal, *, now: datetime
) -> dict[str, Any]:
    async with uow:
        return await uow.reservations.stats(scope_of(principal), now)


# ---- the housekeeper's side ------------------------------------------------------------


async def send_reminders(unit: Unit, *, limit: int = 500) -> int:
    """Inside the unit's transaction: one reminder per booking, ``remindBeforeMinutes``
    before its start."""
    due = await unit.uow.reservations.lock_to_remind(unit.now, limit)
    if due:
        await unit.uow.reservations.mark("reminded_at", [r.id for r in due], unit.now)
        unit.emit(*(events.ReservationReminded(occurred_at=unit.now, **_about(r)) for r in due))
    return len(due)


async def prewarm_devices(unit: Unit, *, limit: int = 500) -> int:
    """Inside the unit's transaction: the booked devices whose pre-warm starts go through
    a reset once it commits, so the phone is fresh at the start."""
    uow, now = unit.uow, unit.now
    due = await uow.reservations.lock_to_prewarm(now, limit)
    if not due:
        return 0
    await uow.reservations.mark("prewarmed_at", [r.id for r in due], now)
    resetting = await uow.devices.transition(
        [r.device_id for r in due], DeviceStatus.AVAILABLE, DeviceStatus.RESETTING, now
    )
    unit.emit(*(events.ReservationPrewarmStarted(occurred_at=now, **_about(r)) for r in due))
    for device in resetting:
        unit.effects.reset(device.node_id, device.id)
    return len(due)


async def start_due_reservation(unit: Unit) -> tuple[Reservation, Grant | None] | None:
    """Inside the unit's transaction, activate the next booking whose start has come: it
    becomes a lease until its end (quota checked now), on its device or, if that one failed,
    another matching one; else it fails with a reason. ``None`` when none is due."""
    uow, now = unit.uow, unit.now
    due = await uow.reservations.lock_starting(now, 1, READYING_GRACE)
    if not due:
        return None
    booking = due[0]
    if booking.end_time <= now:
        await uow.reservations.end(booking.id, ReservationStatus.FAILED, now, "window_passed")
        unit.emit(
            events.ReservationFailed(occurred_at=now, reason="window_passed", **_about(booking))
        )
        return booking, None
    # Marked active first: the lease being placed must not be refused for its own booking.
    await uow.reservations.activate(booking.id, None, booking.device_id)
    lease = PendingLease(uuid.uuid4(), booking.tenant_id, booking.user_id, now, booking.end_time)
    try:
        async with uow.savepoint():
            if booking.pinned:  # that device or none, checked as at booking
                await _check_schedulable(uow, booking.device_id, booking.requirements)
            grant = await place_lease(unit, lease, booking.requirements, [booking.device_id])
            if booking.pinned and grant.device.id != booking.device_id:
                raise DeviceNotSchedulable("the booked device is not available")
    except (NoCapacity, QuotaExceeded, DeviceNotSchedulable, DeviceNotFound) as refusal:
        await uow.reservations.end(booking.id, ReservationStatus.FAILED, now, refusal.code)
        unit.emit(events.ReservationFailed(occurred_at=now, reason=refusal.code, **_about(booking)))
        return replace(booking, status=ReservationStatus.FAILED, reason=refusal.code), None
    await uow.reservations.activate(booking.id, grant.allocation.id, grant.device.id)
    started = replace(booking, device_id=grant.device.id)
    unit.emit(
        events.ReservationActivated(
            occurred_at=now, allocation_id=grant.allocation.id, **_about(started)
        )
    )
    if grant.device.id != booking.device_id:
        unit.emit(
            events.ReservationMoved(
                occurred_at=now, allocation_id=grant.allocation.id, **_about(started)
            )
        )
    return replace(
        started, status=ReservationStatus.ACTIVE, allocation_id=grant.allocation.id
    ), grant


async def move_bookings_off(unit: Unit, device_id: uuid.UUID, reason: str) -> int:
    """A failed device's bookings not started yet move at once to a matching device free for
    their window (a booking pinned to it, or one nothing else can take, fails with
    ``reason``); how many moved."""
    uow, now = unit.uow, unit.now
    reset = unit.settings.reset if unit.settings is not None else timedelta(0)
    moved = 0
    for booking in await uow.reservations.lock_pending_on(device_id):
        window = (booking.start_time, booking.end_time, booking.prewarm_at)
        try:
            if booking.pinned:
                raise DeviceNotSchedulable("the booked device failed")
            new_device = await _book(
                uow,
                booking.requirements,
                None,
                window,
                reset,
                viewer=Scope(None, None),
                exclude=booking.id,
            )
        except (ReservationConflict, DeviceNotSchedulable):
            await uow.reservations.end(booking.id, ReservationStatus.FAILED, now, reason)
            unit.emit(events.ReservationFailed(occurred_at=now, reason=reason, **_about(booking)))
            continue
        await uow.reservations.update_window(booking.id, new_device, *window)
        unit.emit(
            events.ReservationMoved(
                occurred_at=now, **_about(replace(booking, device_id=new_device))
            )
        )
        moved += 1
    return moved
