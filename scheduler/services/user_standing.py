"""Platform users in good standing or not (issue 12 §3): a user the platform suspends or
deletes loses its leases (ended with usage records), its waits and bookings (cancelled) and
its PhoneFleet tokens (revoked), and its requests are refused (403 ``user_suspended``) until
the platform activates it again. A device limit the platform sets is enforced by the database
on every grant, and the leases above a lowered one end after a grace; overdue billing (or
enough failed payments) suspends the user after a grace unless a payment comes first."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable

from scheduler.domain import events
from scheduler.domain.allocations import AllocationStatus
from scheduler.domain.errors import UserSuspended
from scheduler.domain.identity import Scope
from scheduler.domain.inbox import (
    BillingSettled,
    BillingTrouble,
    LimitTenant,
    LimitUser,
    Payer,
    ReinstateUser,
    SuspendUser,
)
from scheduler.services.command_path import Unit
from scheduler.services.leases import end_lease
from scheduler.services.ports import USER_STANDING, ChangeFeed, UnitOfWorkFactory
from scheduler.services.queue import cancel_entries_of
from scheduler.services.reservations import cancel_bookings_of

#: Why a suspended holder's leases ended, by the suspension's cause.
END_REASONS = {
    "suspended": "user_suspended",
    "deleted": "user_deleted",
    "billing": "billing_overdue",
}
#: How many due suspensions and limits one housekeeper tick applies.
STANDING_BATCH = 100


def tenant_key(tenant_id: uuid.UUID) -> str:
    """How a whole tenant is named where users are (suspensions, limits, billing): no
    platform user id looks like it."""
    return f"tenant:{tenant_id}"


def _holder(key: str) -> Scope:
    """What a key holds: a tenant's rows, or a user's in every tenant."""
    if key.startswith("tenant:"):
        with contextlib.suppress(ValueError):
            return Scope(uuid.UUID(key.removeprefix("tenant:")), None)
    return Scope(None, key)


async def _key_of(unit: Unit, payer: Payer) -> str | None:
    """The key of the user or tenant a billing message names (``None``: a tenant unknown
    here)."""
    if payer.user_id:
        return payer.user_id
    tenant = await unit.uow.tenants.get_by_name(payer.tenant)
    return tenant_key(tenant.id) if tenant else None


async def suspend_user(unit: Unit, action: SuspendUser) -> str:
    return await _suspend(unit, action.user_id, action.cause, action.reason)


async def _suspend(unit: Unit, key: str, cause: str, reason: str) -> str:
    """Inside the unit: record the suspension of a user or a tenant, then cancel and end
    everything it holds (and revoke a user's tokens, unless suspended for billing); what was
    done, in words. Its waits go first: a drain granting one holds the entry, then the
    tenant's row, which ending a lease takes (the other order deadlocks)."""
    uow, now = unit.uow, unit.now
    await uow.standing.suspend(key, cause, reason, now)
    holder, end_reason = _holder(key), END_REASONS[cause]
    entries = await cancel_entries_of(unit, holder, end_reason)
    bookings = await cancel_bookings_of(unit, holder, end_reason)
    leases = await uow.allocations.lock_active_of(holder)
    for lease in leases:
        await end_lease(unit, lease, AllocationStatus.REVOKED, end_reason)
    # A billing suspension is lifted by a payment: the user's tokens work again then.
    keep_tokens = cause == "billing" or holder.tenant_id is not None
    tokens = 0 if keep_tokens else await uow.tokens.revoke_user(key, now)
    unit.emit(
        events.UserSuspended(
            occurred_at=now,
            user_id=key,
            cause=cause,
            reason=reason,
            leases_ended=len(leases),
            entries_cancelled=entries,
            bookings_cancelled=bookings,
            tokens_revoked=tokens,
        )
    )
    return (
        f"{key} {cause}: {len(leases)} leases ended, {entries} waits and {bookings} bookings"
        f" cancelled, {tokens} tokens revoked"
    )


async def reinstate_user(unit: Unit, action: ReinstateUser) -> str:
    return await _reinstate(unit, action.user_id)


async def _reinstate(unit: Unit, key: str) -> str:
    if not await unit.uow.standing.reinstate(key):
        return f"{key} was not suspended"
    unit.emit(events.UserReinstated(occurred_at=unit.now, user_id=key))
    return f"{key} reinstated"


async def limit_user(unit: Unit, action: LimitUser) -> str:
    """Set the user's device limit (the database refuses its grants beyond it); the leases
    above it end after the grace (noticed now)."""
    held = await unit.uow.standing.active_leases(action.user_id)
    return await _limit(unit, action.user_id, action.max_devices, held)


async def limit_tenant(unit: Unit, action: LimitTenant) -> str:
    """Set the tenant's device quota. Below what it holds, its quota stops at what it holds
    now (no new lease) and the leases above the limit end after the grace."""
    uow = unit.uow
    named = await uow.tenants.get_by_name(action.tenant)
    tenant = await uow.tenants.lock(named.id) if named else None
    if tenant is None:
        return f"tenant {action.tenant!r} is not in this fleet"
    # Its quota: the limit, or what it holds now until the excess has ended.
    await uow.tenants.update(tenant.id, None, max(tenant.used_devices, action.max_devices), None)
    return await _limit(unit, tenant_key(tenant.id), action.max_devices, tenant.used_devices)


async def _limit(unit: Unit, key: str, max_devices: int, held: int) -> str:
    now = unit.now
    ends_at = now + unit.config.standing.quota_grace if held > max_devices else None
    await unit.uow.standing.set_limit(key, max_devices, now, ends_at)
    unit.emit(
        events.UserLimitSet(
            occurred_at=now,
            user_id=key,
            max_devices=max_devices,
            active_leases=held,
            excess_ends_at=ends_at,
        )
    )
    excess = f"; {held - max_devices} end at {ends_at.isoformat()}" if ends_at else ""
    return f"{key} limited to {max_devices} devices{excess}"


async def billing_trouble(unit: Unit, action: BillingTrouble) -> str:
    """Overdue: a suspension is due after the grace. A failed payment is counted, and makes
    one due once they reach the threshold. The user or tenant is warned of it."""
    uow, now, rules = unit.uow, unit.now, unit.config.standing
    key = await _key_of(unit, action.payer)
    if key is None:
        return f"tenant {action.payer.tenant!r} is not in this fleet"
    if not action.overdue:
        failures = await uow.standing.payment_failed(key, now)
        if failures < rules.payment_failures:
            return f"{key}: {failures} failed payments"
    due = await uow.standing.suspension_due(key, action.reason, now + rules.overdue_grace, now)
    unit.emit(
        events.UserSuspensionWarning(
            occurred_at=now, user_id=key, reason=action.reason, suspend_at=due
        )
    )
    return f"{key} to be suspended at {due.isoformat()}: {action.reason}"


async def billing_settled(unit: Unit, action: BillingSettled) -> str:
    """No suspension is due any more; a user or tenant suspended for billing is
    reinstated."""
    uow = unit.uow
    key = await _key_of(unit, action.payer)
    if key is None:
        return f"tenant {action.payer.tenant!r} is not in this fleet"
    lifted = await uow.standing.settle(key, unit.now)
    reinstated = await uow.standing.suspension_cause(key) == "billing"
    if reinstated:
        await _reinstate(unit, key)
    if lifted or reinstated:
        unit.emit(
            events.UserBillingSettled(occurred_at=unit.now, user_id=key, reinstated=reinstated)
        )
    return f"{key} settled" + (" and reinstated" if reinstated else "")


async def enforce_standing(unit: Unit) -> int:
    """The housekeeper's job: suspensions whose grace ran out are applied, and the leases
    above a lowered limit end, oldest first (a tenant's quota then comes down to the
    limit). How many users and tenants it acted on."""
    uow = unit.uow
    due = await uow.standing.lock_due_suspensions(unit.now, STANDING_BATCH)
    for key, reason in due:
        await _suspend(unit, key, "billing", reason)
        await uow.standing.suspension_applied(key)
    limits = await uow.standing.lock_due_limits(unit.now, STANDING_BATCH)
    for key, max_devices in limits:
        holder = _holder(key)
        leases = await uow.allocations.lock_active_of(holder)
        excess = leases[: max(0, len(leases) - max_devices)]
        for lease in excess:
            await end_lease(unit, lease, AllocationStatus.REVOKED, "user_limit")
        if holder.tenant_id is not None:
            await uow.tenants.update(holder.tenant_id, None, max_devices, None)
        await uow.standing.limit_enforced(key)
        unit.emit(
            events.UserLimitEnforced(
                occurred_at=unit.now,
                user_id=key,
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

    async def check(self, user_id: str, tenant_id: uuid.UUID) -> None:
        """Raises:
        UserSuspended: the platform suspended or deleted the user, or suspended its tenant.
        InfrastructureError: the database is down.
        """
        if self._monotonic() >= self._until:
            async with self._uow_factory() as uow:
                self._users = await uow.standing.suspended_users()
            ttl = self._ttl if self._changes.listening else min(self._ttl, 1.0)
            self._until = self._monotonic() + ttl
        if user_id in self._users:
            raise UserSuspended(f"the platform suspended user {user_id!r}")
        if tenant_key(tenant_id) in self._users:
            raise UserSuspended("the platform suspended this user's tenant")
