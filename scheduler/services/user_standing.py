"""Platform users in good standing or not (issue 12 §3): a user the platform suspends or
deletes loses its leases (ended with usage records), its waits and bookings (cancelled) and
its PhoneFleet tokens (revoked), and its requests are refused (403 ``user_suspended``) until
the platform activates it again."""

from __future__ import annotations

import time
from collections.abc import Callable

from scheduler.domain import events
from scheduler.domain.allocations import AllocationStatus
from scheduler.domain.errors import UserSuspended
from scheduler.domain.inbox import ReinstateUser, SuspendUser
from scheduler.services.command_path import Unit
from scheduler.services.leases import end_lease
from scheduler.services.ports import USER_STANDING, ChangeFeed, UnitOfWorkFactory
from scheduler.services.queue import cancel_entries_of_user
from scheduler.services.reservations import cancel_bookings_of_user


async def suspend_user(unit: Unit, action: SuspendUser) -> str:
    """Inside the unit: record the suspension, then cancel and end everything the user holds;
    what was done, in words. Its waits go first: a drain granting one holds the entry, then
    the tenant's row, which ending a lease takes (the other order deadlocks)."""
    uow, now = unit.uow, unit.now
    await uow.standing.suspend(action.user_id, action.cause, action.reason, now)
    end_reason = f"user_{action.cause}"
    entries = await cancel_entries_of_user(unit, action.user_id, end_reason)
    bookings = await cancel_bookings_of_user(unit, action.user_id, end_reason)
    leases = await uow.allocations.lock_active_of_user(action.user_id)
    for lease in leases:
        await end_lease(unit, lease, AllocationStatus.REVOKED, end_reason)
    tokens = await uow.tokens.revoke_user(action.user_id, now)
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
