"""Translate PostgreSQL errors into domain errors, keyed on the named constraint."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors

from scheduler.domain import errors

CONSTRAINT_ERRORS: dict[str, type[errors.SchedulerError]] = {
    "tenants_name_unique_v1": errors.AlreadyExists,
    "nodes_name_unique_v1": errors.AlreadyExists,
    "devices_name_unique_v1": errors.AlreadyExists,
    "devices_adb_endpoint_unique_v1": errors.AlreadyExists,
    "allocations_one_active_per_device_v1": errors.NoCapacity,
    "tenants_usage_within_quota_v1": errors.QuotaExceeded,
    "usage_records_one_per_allocation_v1": errors.AllocationNotActive,
    "api_tokens_hash_unique_v1": errors.AlreadyExists,
    "strategies_name_unique_v1": errors.AlreadyExists,
    "strategies_one_active_v1": errors.ConcurrentUpdate,
    "strategies_exactly_one_active_v1": errors.StrategyActive,
    "jobs_one_running_rebalance_v1": errors.RebalanceInProgress,
}

CONSTRAINT_DETAILS = {
    "allocations_one_active_per_device_v1": "the device was leased by a concurrent request",
    "tenants_usage_within_quota_v1": "the tenant's quota does not admit this",
    "usage_records_one_per_allocation_v1": "the allocation has already ended",
    "strategies_name_unique_v1": "a strategy with that name exists",
    "strategies_exactly_one_active_v1": "exactly one strategy must stay active",
    "jobs_one_running_rebalance_v1": "a rebalance is running; start another once it is done",
}


#: SQLSTATE of ``phonefleet_refuse(reason)`` (migration 0013), and the errors its reasons are.
REFUSED = "PF001"
REFUSALS: dict[str, type[errors.SchedulerError]] = {
    "taken": errors.ClaimContended,
    "quota": errors.QuotaExceeded,
    "user_limit": errors.UserLimitReached,
}


@contextmanager
def translate_db_errors() -> Iterator[None]:
    """Raise the domain error a violated constraint or a refusing statement stands for;
    infrastructure faults become ``InfrastructureError``. Driver exceptions never leave the
    adapters."""
    try:
        yield
    except psycopg.Error as exc:
        error = domain_error(exc)
        if error is exc:
            raise
        raise error from exc


def domain_error(exc: psycopg.Error) -> Exception:
    """The domain error ``exc`` stands for, or ``exc`` itself (a fault of ours)."""
    if exc.sqlstate == REFUSED:
        return REFUSALS.get(exc.diag.message_primary or "", errors.ConcurrentUpdate)()
    if isinstance(exc, pg_errors.IntegrityError):
        name = exc.diag.constraint_name or ""
        error = CONSTRAINT_ERRORS.get(name)
        if error is None:
            return exc
        return error(CONSTRAINT_DETAILS.get(name, f"{error.__doc__} ({name})"))
    if isinstance(exc, pg_errors.DataError):
        # A value the database cannot hold (out of range, NUL in text): the request's fault.
        return errors.InvalidRequest(f"a value is out of range: {exc.diag.message_primary}")
    if isinstance(exc, pg_errors.DeadlockDetected | pg_errors.SerializationFailure):
        return errors.ConcurrentUpdate()
    if isinstance(exc, pg_errors.QueryCanceled | pg_errors.LockNotAvailable):
        return errors.InfrastructureError(
            "the database did not answer in time (a statement or lock timeout); retry"
        )
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return errors.InfrastructureError("the database is unavailable")
    return exc
