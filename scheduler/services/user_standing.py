"""Platform users in good standing or not (issue 12 §3): a user the platform suspends or
deletes loses its leases (ended with usage records), its waits and bookings (cancelled) and
its PhoneFleet tokens (revoked), and its requests are refused (403 ``user_suspended``) until
the platform activates it again. A device limit the platform sets is enforced by the database
on every grant, and the leases above a lowered one end after a grace; overdue billing (or
enough failed payments) suspends the user after a grace unless a payment comes first."""

from __future__ import annotations

import time
from collections.abc import Callable

from scheduler.domain import events
from scheduler.domain.allocations import AllocationStatus
from scheduler.domain.errors import UserSuspended
from scheduler.domain.inbox import (
    BillingSettled,
    BillingTrouble,
    LimitUser,
    ReinstateUser,
    SuspendUser,
)
from scheduler.services.command_path import Unit
from scheduler.services.leases import end_lease
from scheduler.services.ports import USER_STANDING, ChangeFeed, UnitOfWorkFactory
from scheduler.services.queue import cancel_entries_of_user
from scheduler.services.reservations import cancel_bookings_of_user

#: Why a suspended user's leases ended, by the suspension's cause.
END_REASONS = {
    "suspended": "user_suspended",
    "deleted": "user_deleted",
    "billing": "billing_overdue",
}
#: How many due suspensions and limits one housekeeper tick applies.
STANDING_BATCH = 100


async def suspend_user(unit: Unit, action: SuspendUser) -> str:
    """Inside the unit: record the suspension, then cancel and end everything the user holds
    (and revoke its tokens, unless it is suspended for billing); what was done, in words. Its waits go first: a drain granting one holds the entry, then
    the tenant's row, which ending a lease takes (the other order deadlocks)."""
    uow, now = unit.uow, unit.now
    await uow.standing.suspend(action.user_id, action.cause, action.reason, now)
    end_reason = END_REASONS[action.cause]
    entries = await cancel_entries_of_user(unit, action.user_id, end_reason)
    bookings = await cancel_bookings_of_user(unit, action.user_id, end_reason)
    leases = await uow.allocations.lock_active_of_user(action.user_id)
    for lease in leases:
        await end_lease(unit, lease, AllocationStatus.REVOKED, end_reason)
    # A billing suspension is lifted by a payment: the user's tokens work again then.
    billing = action.cause == "billing"
    tokens = 0 if billing else await uow.tokens.revoke_user(action.user_id, now)
    unit.emit(
        events.UserSuspended(
            occurred_at=now,
            user_id=action.user_id,
            cause=action.cause,
            reason=action.reason,
            leases_ended=len(leases),
            entries_cancelled=entries,
            bookings_cancelled=bookings,
            tokens_revoked=tokens,
        )
    )
    return (
        f"user {action.user_id} {action.cause}: {len(leases)} leases ended, {entries} waits"
        f" and {bookings} bookings cancelled, {tokens} tokens revoked"
    )


async def reinstate_user(unit: Unit, action: ReinstateUser) -> str:
    if not await unit.uow.standing.reinstate(action.user_id):
        return f"user {action.user_id} was not suspended"
    unit.emit(events.UserReinstated(occurred_at=unit.now, user_id=action.user_id))
    return f"user {action.user_id} reinstated"


async def limit_user(unit: Unit, action: LimitUser) -> str:
    """Set the user's device limit; the leases above it end after the grace (noticed now)."""
    uow, now = unit.uow, unit.now
    held = await uow.standing.active_leases(action.user_id)
    ends_at = now + unit.config.standing.quota_grace if held > action.max_devices else None
    await uow.standing.set_limit(action.user_id, action.max_devices, now, ends_at)
    unit.emit(
        events.UserLimitSet(
            occurred_at=now,
            user_id=action.user_id,
            max_devices=action.max_devices,
            active_leases=held,
            excess_ends_at=ends_at,
        )
    )
    excess = f"; {held - action.max_devices} end at {ends_at.isoformat()}" if ends_at else ""
    return f"user {action.user_id} limited to {action.max_devices} devices{excess}"


async def billing_trouble(unit: Unit, action: BillingTrouble) -> str:
    """Overdue: a suspension is due after the grace. A failed payment is counted, and makes
    one due once they reach the threshold. The user is warned of it."""
    uow, now, rules = unit.uow, unit.now, unit.config.standing
    if not action.overdue:
        failures = await uow.standing.payment_failed(action.user_id, now)
        if failures < rules.payment_failures:
            return f"user {action.user_id}: {failures} failed payments"
    due = await uow.standing.suspension_due(
        action.user_id, action.reason, now + rules.overdue_grace, now
    )
    unit.emit(
        events.UserSuspensionWarning(
            occurred_at=now, user_id=action.user_id, reason=action.reason, suspend_at=due
        )
    )
    return f"user {action.user_id} to be suspended at {due.isoformat()}: {action.reason}"


async def billing_settled(unit: Unit, action: BillingSettled) -> str:
    """No suspension is due any more; a user suspended for billing is reinstated."""
    uow = unit.uow
    lifted = await uow.standing.settle(action.user_id, unit.now)
    reinstated = await uow.standing.suspension_cause(action.user_id) == "billing"
    if reinstated:
        await reinstate_user(unit, ReinstateUser(action.user_id))
    if lifted or reinstated:
        unit.emit(
            events.UserBillingSettled(
                occurred_at=unit.now, user_id=action.user_id, reinstated=reinstated
            )
        )
    return f"user {action.user_id} settled" + (" and reinstated" if reinstated else "")


async def enforce_standing(unit: Unit) -> int:
    """The housekeeper's job: suspensions whose grace ran out are applied, and the leases
    above a lowered limit end, oldest first. How many users it acted on."""
    uow = unit.uow
    due = await uow.standing.lock_due_suspensions(unit.now, STANDING_BATCH)
    for user_id, reason in due:
        await suspend_user(unit, SuspendUser(user_id, "billing", reason))
        await uow.standing.suspension_applied(user_id)
    limits = await uow.standing.lock_due_limits(unit.now, STANDING_BATCH)
    for user_id, max_devices in limits:
        leases = await uow.allocations.lock_active_of_user(user_id)
        excess = leases[: max(0, len(leases) - max_devices)]
        for lease in excess:
            await end_lease(unit, lease, AllocationStatus.REVOKED, "user_limit")
        await uow.standing.limit_enforced(user_id)
        unit.emit(
            events.UserLimitEnforced(
                occurred_at=unit.now,
                user_id=user_id,
                max_devices=max_devices,
                leases_ended=len(excess),
            )
        )
    return len(due) + len(limits)


class SuspendedUsers:
    """Which users are suspended, as every request asks: the whole (small) set, read again
    when the change feed announces a change, and at most ``ttl_seconds`` old (one second
    while the feed is not heard), so a suspension is enforced within a second."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        changes: ChangeFeed,
        ttl_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow_factory = uow_factory
        self._changes = changes
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._users: frozenset[str] = frozenset()
        self._until = 0.0
        changes.on(USER_STANDING, self._forget)

    def _forget(self) -> None:
        self._until = 0.0

    async def check(self, user_id: str) -> None:
        """Raises:
        UserSuspended: the platform suspended or deleted the user.
        InfrastructureError: the database is down.
        """
        if self._monotonic() >= self._until:
            async with self._uow_factory() as uow:
                self._users = await uow.standing.suspended_users()
            ttl = self._ttl if self._changes.listening else min(self._ttl, 1.0)
            self._until = self._monotonic() + ttl
        if user_id in self._users:
            raise UserSuspended(f"the platform suspended user {user_id!r}")
