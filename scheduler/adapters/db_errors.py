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
}

CONSTRAINT_DETAILS = {
    "allocations_one_active_per_device_v1": "the device was leased by a concurrent request",
    "tenants_usage_within_quota_v1": "the tenant's quota does not admit this",
    "usage_records_one_per_allocation_v1": "the allocation has already ended",
}


@contextmanager
def translate_db_errors() -> Iterator[None]:
    """Raise the domain error a violated constraint stands for; infrastructure faults become
    ``InfrastructureError``. Driver exceptions never leave the adapters."""
    try:
        yield
    except pg_errors.IntegrityError as exc:
        name = exc.diag.constraint_name or ""
        error = CONSTRAINT_ERRORS.get(name)
        if error is None:
            raise
        raise error(CONSTRAINT_DETAILS.get(name, f"{error.__doc__} ({name})")) from exc
    except pg_errors.DataError as exc:
        # A value the database cannot hold (out of range, NUL in text): the request's fault.
        raise errors.InvalidRequest(f"a value is out of range: {exc.diag.message_primary}") from exc
    except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as exc:
        raise errors.ConcurrentUpdate() from exc
    except (pg_errors.QueryCanceled, pg_errors.LockNotAvailable) as exc:
        raise errors.InfrastructureError(
            "the database did not answer in time (a statement or lock timeout); retry"
        ) from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise errors.InfrastructureError("the database is unavailable") from exc
