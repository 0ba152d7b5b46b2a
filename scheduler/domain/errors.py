"""The scheduler's error hierarchy: each error names a condition and carries a stable code.

Errors cross Ray actor boundaries, so every class keeps the one-argument constructor that
``Exception`` pickles with. The docstring is the default detail.
"""

from __future__ import annotations


class SchedulerError(Exception):
    """The scheduler could not do what was asked."""

    code = "scheduler_error"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or (self.__doc__ or self.code).strip())

    @property
    def detail(self) -> str:
        return str(self.args[0])


class NotFound(SchedulerError):
    """The resource does not exist or is not visible to the caller."""

    code = "not_found"


class AllocationNotFound(NotFound):
    """No such allocation is visible to the caller."""

    code = "allocation_not_found"


class StrategyNotFound(NotFound):
    """No such strategy in the catalogue."""

    code = "strategy_not_found"


class DeviceNotFound(NotFound):
    """No such device exists."""

    code = "device_not_found"


class NodeNotFound(NotFound):
    """No such node exists."""

    code = "node_not_found"


class TenantNotFound(NotFound):
    """No such tenant exists."""

    code = "tenant_not_found"


class TokenNotFound(NotFound):
    """No such token exists."""

    code = "token_not_found"


class JobNotFound(NotFound):
    """No such job exists."""

    code = "job_not_found"


class Conflict(SchedulerError):
    """The request conflicts with the current state."""

    code = "conflict"


class NoCapacity(Conflict):
    """No available device matches the request."""

    code = "no_capacity"


class NodeCapacityExceeded(Conflict):
    """The node has no room for these devices."""

    code = "node_capacity_exceeded"


class AllocationNotActive(Conflict):
    """The allocation has already ended."""

    code = "allocation_not_active"


class ExtensionNotAllowed(Conflict):
    """The lease cannot be extended by that much."""

    code = "extension_not_allowed"

    def __init__(self, detail: str | None = None, max_additional_minutes: int = 0) -> None:
        super().__init__(detail)
        self.max_additional_minutes = max_additional_minutes

    def __reduce__(self) -> tuple[type, tuple[str, int]]:
        return type(self), (self.detail, self.max_additional_minutes)


class ExtensionConflictsWithReservation(ExtensionNotAllowed):
    """The device is booked soon after the lease: it can only be extended up to then."""

    code = "extension_conflicts_with_reservation"


class ReservationNotFound(NotFound):
    """No such reservation is visible to the caller."""

    code = "reservation_not_found"


class ReservationConflict(Conflict):
    """No matching device is free for that window."""

    code = "reservation_conflict"

    def __init__(
        self, detail: str | None = None, conflicts: tuple[tuple[str, str, str], ...] = ()
    ) -> None:
        super().__init__(detail)
        self.conflicts = conflicts

    def __reduce__(self) -> tuple[type, tuple[str, tuple[tuple[str, str, str], ...]]]:
        return type(self), (self.detail, self.conflicts)


class DeviceNotSchedulable(Conflict):
    """The device takes no new leases or bookings (its node is not ready, or tainted)."""

    code = "device_not_schedulable"


class BookingCapReached(Conflict):
    """The tenant has as many pending bookings as it may."""

    code = "booking_cap_reached"


class ReservationNotPending(Conflict):
    """The reservation has already started or ended."""

    code = "reservation_not_pending"


class ReservationNotActive(Conflict):
    """The reservation has not started yet, or has ended: there is nothing to check in to."""

    code = "reservation_not_active"


class ConcurrentUpdate(Conflict):
    """A concurrent request changed the same rows; retry the request."""

    code = "concurrent_update"


class NodeInUse(Conflict):
    """The node still has leases or bookings: drain it first (``?drain=true``)."""

    code = "node_in_use"


class DeviceInUse(Conflict):
    """The device is leased or booked: move its lease first (``?drain=true``)."""

    code = "device_in_use"


class NodeStateConflict(Conflict):
    """The node's status does not allow this now."""

    code = "node_state_conflict"


class NotSimulated(Conflict):
    """Only the simulated driver can fail devices and nodes on demand."""

    code = "not_simulated"


class StrategyActive(Conflict):
    """The active strategy cannot be deleted; activate another first."""

    code = "strategy_active"


class RebalanceInProgress(Conflict):
    """A rebalance is running; start another once it is done (``GET /scheduler/jobs``)."""

    code = "rebalance_in_progress"


class ClaimContended(ConcurrentUpdate):
    """Every device a grant was sent for was taken by concurrent requests meanwhile."""

    code = "claim_contended"


class AlreadyExists(Conflict):
    """A resource with that name already exists."""

    code = "already_exists"


class InvalidTransition(Conflict):
    """The resource cannot move to that state from its current one."""

    code = "invalid_transition"


class QueueEntryNotFound(NotFound):
    """No such queue entry is visible to the caller."""

    code = "queue_entry_not_found"


class QueueEntryNotWaiting(Conflict):
    """The queue entry no longer waits."""

    code = "queue_entry_not_waiting"


class QueueFull(SchedulerError):
    """The wait queue is full; retry later."""

    code = "queue_full"
    retry_after_seconds = 30


class RateLimited(SchedulerError):
    """Too many requests; retry after the time given."""

    code = "rate_limited"


class QuotaExceeded(SchedulerError):
    """The tenant's quota does not admit this request."""

    code = "quota_exceeded"


class Unauthenticated(SchedulerError):
    """A valid bearer token is required."""

    code = "unauthorized"


class Forbidden(SchedulerError):
    """The caller's role does not allow this."""

    code = "forbidden"


class UserLimitReached(QuotaExceeded):
    """The user holds as many devices as the platform's quota for it allows."""

    code = "user_device_limit"


class UserSuspended(Forbidden):
    """The platform suspended or deleted this user: its requests are refused until the
    platform activates it again."""

    code = "user_suspended"


class InvalidRequest(SchedulerError):
    """The request is well formed but not acceptable."""

    code = "invalid_request"


class Unsatisfiable(InvalidRequest):
    """No device of the fleet could ever satisfy the request."""

    code = "unsatisfiable"

    def __init__(self, detail: str | None = None, constraint: str = "") -> None:
        super().__init__(detail)
        self.constraint = constraint

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.detail, self.constraint)


class InvalidCursor(InvalidRequest):
    """The cursor is not one this service issued; start again without it."""

    code = "invalid_cursor"


class IdempotencyKeyReused(InvalidRequest):
    """The Idempotency-Key was already used with a different request."""

    code = "idempotency_key_reused"


class InfrastructureError(SchedulerError):
    """A backing service (PostgreSQL, Redis, Ray) is unavailable."""

    code = "service_unavailable"
