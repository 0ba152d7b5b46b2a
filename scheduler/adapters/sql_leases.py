"""SQL repositories of allocations and usage records."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from scheduler.adapters.sql_base import SqlRepository, decode_cursor, encode_cursor, sql
from scheduler.domain.allocations import Allocation, AllocationStatus, UsageRecord
from scheduler.domain.identity import Scope
from scheduler.domain.resources import Resources
from scheduler.services.commands import AllocationFilter, Page

ALLOCATION_COLUMNS = (
    "id, device_id, tenant_id, user_id, status, allocated_at, expires_at, ended_at, end_reason,"
    " cpu_cores, memory_mb, storage_mb, extension_count"
)
EXPIRING_SOON = timedelta(minutes=10)


def allocation_from_row(row: RowMapping) -> Allocation:
    return Allocation(
        id=row["id"],
        device_id=row["device_id"],
        tenant_id=row["tenant_id"],
        user_id=row["user_id"],
        status=AllocationStatus(row["status"]),
        allocated_at=row["allocated_at"],
        expires_at=row["expires_at"],
        resources=Resources(row["cpu_cores"], row["memory_mb"], row["storage_mb"]),
        ended_at=row["ended_at"],
        end_reason=row["end_reason"],
        extension_count=row["extension_count"],
    )


def _scope_sql(scope: Scope, params: dict[str, Any]) -> str:
    clauses = []
    if scope.tenant_id is not None:
        clauses.append("tenant_id = :scope_tenant")
        params["scope_tenant"] = scope.tenant_id
    if scope.user_id is not None:
        clauses.append("user_id = :scope_user")
        params["scope_user"] = scope.user_id
    return " AND ".join(clauses) or "TRUE"


class SqlAllocationRepository(SqlRepository):
    async def add(self, allocation: Allocation, idempotency_key: str | None) -> None:
        await self._rows(
            sql(
                "INSERT INTO allocations (id, device_id, tenant_id, user_id, status, allocated_at,"
                " expires_at, cpu_cores, memory_mb, storage_mb, idempotency_key) VALUES (:id,"
                " :device_id, :tenant_id, :user_id, :status, :allocated_at, :expires_at, :cpu,"
                " :mem, :sto, :key)"
            ),
            {
                "id": allocation.id,
                "device_id": allocation.device_id,
                "tenant_id": allocation.tenant_id,
                "user_id": allocation.user_id,
                "status": allocation.status.value,
                "allocated_at": allocation.allocated_at,
                "expires_at": allocation.expires_at,
                "cpu": allocation.resources.cpu_cores,
                "mem": allocation.resources.memory_mb,
                "sto": allocation.resources.storage_mb,
                "key": idempotency_key,
            },
        )

    async def get(self, allocation_id: uuid.UUID, scope: Scope) -> Allocation | None:
        params: dict[str, Any] = {"id": allocation_id}
        row = await self._row(
            sql(
                f"SELECT {ALLOCATION_COLUMNS} FROM allocations WHERE id = :id AND "
                + _scope_sql(scope, params)
            ),
            params,
        )
        return allocation_from_row(row) if row else None

    async def active_for_device(self, device_id: uuid.UUID, scope: Scope) -> Allocation | None:
        params: dict[str, Any] = {"device_id": device_id}
        row = await self._row(
            sql(
                f"SELECT {ALLOCATION_COLUMNS} FROM allocations WHERE device_id = :device_id"
                " AND status = 'active' AND " + _scope_sql(scope, params)
            ),
            params,
        )
        return allocation_from_row(row) if row else None

    async def end(
        self,
        allocation_id: uuid.UUID,
        status: AllocationStatus,
        ended_at: datetime,
        reason: str,
    ) -> Allocation | None:
        row = await self._row(
            sql(
                "UPDATE allocations SET status = :status, ended_at = :ended_at, end_reason = :reason"
                f" WHERE id = :id AND status = 'active' RETURNING {ALLOCATION_COLUMNS}"
            ),
            {"id": allocation_id, "status": status.value, "ended_at": ended_at, "reason": reason},
        )
        return allocation_from_row(row) if row else None

    async def lock_due(self, now: datetime, limit: int) -> list[Allocation]:
        rows = await self._rows(
            sql(
                f"SELECT {ALLOCATION_COLUMNS} FROM allocations WHERE status = 'active'"
                " AND expires_at <= :now ORDER BY expires_at LIMIT :limit FOR UPDATE SKIP LOCKED"
            ),
            {"now": now, "limit": limit},
        )
        return [allocation_from_row(r) for r in rows]

    async def next_expiry(self) -> datetime | None:
        row = await self._row(
            sql("SELECT min(expires_at) AS due FROM allocations WHERE status = 'active'")
        )
        return row["due"] if row else None

    async def list(self, scope: Scope, query: AllocationFilter) -> Page[Allocation]:
        params: dict[str, Any] = {"limit": query.limit + 1}
        where = _scope_sql(scope, params)
        if query.user_id is not None:
            where += " AND user_id = :user_id"
            params["user_id"] = query.user_id
        if query.status is not None:
            where += " AND status = :status"
            params["status"] = query.status
        total = await self._row(sql(f"SELECT count(*) AS n FROM allocations WHERE {where}"), params)
        if query.cursor:
            at, last_id = decode_cursor(query.cursor, 2)
            where += " AND (allocated_at, id) < (CAST(:c_at AS timestamptz), CAST(:c_id AS uuid))"
            params.update(c_at=at, c_id=last_id)
        rows = await self._rows(
            sql(
                f"SELECT {ALLOCATION_COLUMNS} FROM allocations WHERE {where}"
                " ORDER BY allocated_at DESC, id DESC LIMIT :limit"
            ),
            params,
        )
        items = [allocation_from_row(r) for r in rows[: query.limit]]
        next_cursor = None
        if len(rows) > query.limit:
            next_cursor = encode_cursor(items[-1].allocated_at.isoformat(), items[-1].id)
        return Page(items, int(total["n"]) if total else 0, next_cursor)

    async def stats(self, scope: Scope, now: datetime) -> dict[str, Any]:
        params: dict[str, Any] = {"now": now, "soon": now + EXPIRING_SOON}
        where = _scope_sql(scope, params)
        row = await self._row(
            sql(
                "SELECT count(*) AS total,"
                " count(*) FILTER (WHERE status = 'active') AS active,"
                " count(*) FILTER (WHERE status = 'released') AS released,"
                " count(*) FILTER (WHERE status = 'expired') AS expired,"
                " count(*) FILTER (WHERE status = 'revoked') AS revoked,"
                " count(*) FILTER (WHERE status = 'active' AND expires_at <= :soon) AS expiring_soon,"
                " count(DISTINCT user_id) AS users,"
                " coalesce(avg(extract(epoch FROM ended_at - allocated_at))"
                "   FILTER (WHERE ended_at IS NOT NULL), 0) AS avg_duration_seconds"
                f" FROM allocations WHERE {where}"
            ),
            params,
        )
        assert row is not None
        return {k: (float(v) if k == "avg_duration_seconds" else int(v)) for k, v in row.items()}


class SqlUsageRepository(SqlRepository):
    async def add(self, record: UsageRecord, now: datetime) -> None:
        await self._rows(
            sql(
                "INSERT INTO usage_records (id, allocation_id, tenant_id, user_id, device_id,"
                " started_at, ended_at, duration_seconds, cpu_cores, memory_mb, storage_mb,"
                " end_reason, created_at) VALUES (:id, :allocation_id, :tenant_id, :user_id,"
                " :device_id, :started_at, :ended_at, :duration, :cpu, :mem, :sto, :reason, :now)"
            ),
            {
                "id": record.id,
                "allocation_id": record.allocation_id,
                "tenant_id": record.tenant_id,
                "user_id": record.user_id,
                "device_id": record.device_id,
                "started_at": record.started_at,
                "ended_at": record.ended_at,
                "duration": record.duration_seconds,
                "cpu": record.resources.cpu_cores,
                "mem": record.resources.memory_mb,
                "sto": record.resources.storage_mb,
                "reason": record.end_reason,
                "now": now,
            },
        )
