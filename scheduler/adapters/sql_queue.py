"""SQL repository of queue entries, and the recent usage that fair share weighs."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from scheduler.adapters.sql_base import (
    Row,
    SqlRepository,
    decode_cursor,
    encode_cursor,
    timestamp,
)
from scheduler.adapters.sql_leases import scope_sql
from scheduler.domain.identity import Scope
from scheduler.domain.queueing import QueueEntry, QueueStatus, WaitReason, WaitView
from scheduler.domain.resources import DeviceRequirements, Toleration
from scheduler.services.commands import Page
from scheduler.services.ports import QUEUE_EMPTY, VIEWS_UPDATED

ENTRY_COLUMNS = (
    "id, tenant_id, user_id, tier, status, duration_minutes, requirements, submitted_at,"
    " deadline_at, ended_at, allocation_id, reason, priority, position, ahead_count,"
    " estimated_start_at, wait_reason, viewed_at"
)
#: The channel status changes and new queue views are announced on (see migration 0009).
CHANGES_CHANNEL = "phonefleet_changes"


def requirements_to_json(r: DeviceRequirements) -> dict[str, Any]:
    return {
        "min_cpu": r.min_cpu,
        "min_memory_mb": r.min_memory_mb,
        "min_storage_mb": r.min_storage_mb,
        "android_version": r.android_version,
        "labels": r.labels,
        "tolerations": [{"key": t.key, "value": t.value} for t in r.tolerations],
    }


def requirements_from_json(data: dict[str, Any]) -> DeviceRequirements:
    return DeviceRequirements(
        min_cpu=data["min_cpu"],
        min_memory_mb=data["min_memory_mb"],
        min_storage_mb=data["min_storage_mb"],
        android_version=data["android_version"],
        labels=data["labels"],
        tolerations=tuple(Toleration(t["key"], t["value"]) for t in data["tolerations"]),
    )


def _view(row: Row) -> WaitView | None:
    if row["status"] != "waiting" or row["viewed_at"] is None:
        return None
    return WaitView(
        row["priority"],
        row["position"],
        row["ahead_count"],
        row["estimated_start_at"],
        WaitReason(row["wait_reason"]),
        row["viewed_at"],
    )


def entry_from_row(row: Row) -> QueueEntry:
    return QueueEntry(
        id=row["id"],
        tenant_id=row["tenant_id"],
        user_id=row["user_id"],
        tier=row["tier"],
        duration_minutes=row["duration_minutes"],
        requirements=requirements_from_json(row["requirements"]),
        status=QueueStatus(row["status"]),
        submitted_at=row["submitted_at"],
        deadline_at=row["deadline_at"],
        ended_at=row["ended_at"],
        allocation_id=row["allocation_id"],
        reason=row["reason"],
        view=_view(row),
    )


class SqlQueueRepository(SqlRepository):
    async def add(self, entry: QueueEntry) -> None:
        await self._send(
            "INSERT INTO queue_entries (id, tenant_id, user_id, tier, status, duration_minutes,"
            " requirements, submitted_at, deadline_at) VALUES (%(id)s, %(tenant_id)s,"
            " %(user_id)s, %(tier)s, %(status)s, %(duration)s, %(requirements)s,"
            " %(submitted_at)s, %(deadline_at)s)",
            {
                "id": entry.id,
                "tenant_id": entry.tenant_id,
                "user_id": entry.user_id,
                "tier": entry.tier,
                "status": entry.status.value,
                "duration": entry.duration_minutes,
                "requirements": Jsonb(requirements_to_json(entry.requirements)),
                "submitted_at": entry.submitted_at,
                "deadline_at": entry.deadline_at,
            },
        )

    async def get(self, entry_id: uuid.UUID, scope: Scope) -> QueueEntry | None:
        params: dict[str, Any] = {"id": entry_id}
        row = await self._row(
            f"SELECT {ENTRY_COLUMNS} FROM queue_entries WHERE id = %(id)s AND "
            + scope_sql(scope, params),
            params,
        )
        return entry_from_row(row) if row else None

    async def lock_waiting(self, entry_id: uuid.UUID, scope: Scope) -> QueueEntry | None:
        """The entry, held, if it still waits and no other transaction holds it."""
        params: dict[str, Any] = {"id": entry_id}
        row = await self._row(
            f"SELECT {ENTRY_COLUMNS} FROM queue_entries WHERE id = %(id)s"
            " AND status = 'waiting' AND " + scope_sql(scope, params) + " FOR UPDATE SKIP LOCKED",
            params,
        )
        return entry_from_row(row) if row else None

    async def lock_waiting_of(self, holder: Scope) -> list[QueueEntry]:
        """The waiting entries of a user (in every tenant) or of a tenant, held (a drain
        holding one is waited for: it fulfils it or lets it go)."""
        params: dict[str, Any] = {}
        rows = await self._rows(
            f"SELECT {ENTRY_COLUMNS} FROM queue_entries WHERE status = 'waiting'"
            f" AND {scope_sql(holder, params)} ORDER BY submitted_at, id FOR UPDATE",
            params,
        )
        return [entry_from_row(r) for r in rows]

    async def waiting(self) -> list[QueueEntry]:
        rows = await self._rows(
            f"SELECT {ENTRY_COLUMNS} FROM queue_entries WHERE status = 'waiting'"
            " ORDER BY submitted_at, id"
        )
        return [entry_from_row(r) for r in rows]

    async def store_views(self, views: Mapping[uuid.UUID, WaitView]) -> None:
        """Write each waiting entry's view (one statement) and announce the new views, or
        that nobody waits."""
        if not views:
            await self._send(
                "SELECT pg_notify(%(channel)s, %(what)s)",
                {"channel": CHANGES_CHANNEL, "what": QUEUE_EMPTY},
            )
            return
        ordered = list(views.items())
        await self._send(
            "UPDATE queue_entries q SET priority = v.priority, position = v.position,"
            " ahead_count = v.ahead, estimated_start_at = v.eta, wait_reason = v.reason,"
            " viewed_at = v.at FROM unnest(%(ids)s::uuid[], %(priorities)s::float8[],"
            " %(positions)s::int[], %(ahead)s::int[], %(etas)s::timestamptz[],"
            " %(reasons)s::text[], %(ats)s::timestamptz[])"
            " AS v(id, priority, position, ahead, eta, reason, at)"
            " WHERE q.id = v.id AND q.status = 'waiting'",
            {
                "ids": [i for i, _ in ordered],
                "priorities": [v.priority for _, v in ordered],
                "positions": [v.position for _, v in ordered],
                "ahead": [v.ahead_count for _, v in ordered],
                "etas": [v.estimated_start_at for _, v in ordered],
                "reasons": [v.reason.value for _, v in ordered],
                "ats": [v.as_of for _, v in ordered],
            },
        )
        await self._send(
            "SELECT pg_notify(%(channel)s, %(what)s)",
            {"channel": CHANGES_CHANNEL, "what": VIEWS_UPDATED},
        )

    async def count_waiting(self, tenant_id: uuid.UUID) -> tuple[int, int]:
        """Waiting entries of the tenant, and in all."""
        row = await self._row(
            "SELECT count(*) FILTER (WHERE tenant_id = %(tenant)s) AS tenant, count(*) AS total"
            " FROM queue_entries WHERE status = 'waiting'",
            {"tenant": tenant_id},
        )
        assert row is not None
        return int(row["tenant"]), int(row["total"])

    async def fulfil(self, entry_id: uuid.UUID, allocation_id: uuid.UUID, now: datetime) -> None:
        await self._send(
            "UPDATE queue_entries SET status = 'fulfilled', allocation_id = %(allocation)s,"
            " ended_at = %(now)s, reason = NULL WHERE id = %(id)s AND status = 'waiting'",
            {"id": entry_id, "allocation": allocation_id, "now": now},
        )

    async def end(
        self, entry_id: uuid.UUID, status: QueueStatus, now: datetime, reason: str | None
    ) -> None:
        await self._send(
            "UPDATE queue_entries SET status = %(status)s, ended_at = %(now)s, reason = %(reason)s"
            " WHERE id = %(id)s AND status = 'waiting'",
            {"id": entry_id, "status": status.value, "now": now, "reason": reason},
        )

    async def lock_overdue(self, now: datetime, limit: int) -> list[QueueEntry]:
        rows = await self._rows(
            f"SELECT {ENTRY_COLUMNS} FROM queue_entries WHERE status = 'waiting'"
            " AND deadline_at <= %(now)s ORDER BY deadline_at LIMIT %(limit)s"
            " FOR UPDATE SKIP LOCKED",
            {"now": now, "limit": limit},
        )
        return [entry_from_row(r) for r in rows]

    async def next_deadline(self) -> datetime | None:
        row = await self._row(
            "SELECT min(deadline_at) AS due FROM queue_entries WHERE status = 'waiting'"
        )
        return row["due"] if row else None

    async def list(
        self, scope: Scope, status: str | None, limit: int, cursor: str | None
    ) -> Page[QueueEntry]:
        params: dict[str, Any] = {"limit": limit + 1}
        where = scope_sql(scope, params)
        if status is not None:
            where += " AND status = %(status)s"
            params["status"] = status
        total = await self._row(f"SELECT count(*) AS n FROM queue_entries WHERE {where}", params)
        if cursor:
            at, last_id = decode_cursor(cursor, timestamp, uuid.UUID)
            where += " AND (submitted_at, id) < (%(c_at)s::timestamptz, %(c_id)s::uuid)"
            params.update(c_at=at, c_id=last_id)
        rows = await self._rows(
            f"SELECT {ENTRY_COLUMNS} FROM queue_entries WHERE {where}"
            " ORDER BY submitted_at DESC, id DESC LIMIT %(limit)s",
            params,
        )
        items = [entry_from_row(r) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(items[-1].submitted_at.isoformat(), items[-1].id)
        return Page(items, int(total["n"]) if total else 0, next_cursor)

    async def stats(self, scope: Scope) -> dict[str, Any]:
        params: dict[str, Any] = {}
        where = scope_sql(scope, params)
        row = await self._row(
            "SELECT count(*) FILTER (WHERE status = 'waiting') AS waiting,"
            " count(*) FILTER (WHERE status = 'fulfilled') AS fulfilled,"
            " count(*) FILTER (WHERE status = 'cancelled') AS cancelled,"
            " count(*) FILTER (WHERE status = 'timed_out') AS timed_out,"
            " count(*) FILTER (WHERE status = 'failed') AS failed,"
            " coalesce(avg(extract(epoch FROM ended_at - submitted_at))"
            "   FILTER (WHERE status = 'fulfilled'), 0) AS avg_wait_seconds,"
            " coalesce(max(extract(epoch FROM ended_at - submitted_at))"
            "   FILTER (WHERE status = 'fulfilled'), 0) AS max_wait_seconds"
            f" FROM queue_entries WHERE {where}",
            params,
        )
        assert row is not None
        return {k: float(v) if "seconds" in k else int(v) for k, v in row.items()}

    async def recent_usage(
        self, now: datetime, half_life: timedelta, window: timedelta
    ) -> dict[uuid.UUID, float]:
        """Device-seconds per tenant over ``window``, each halved every ``half_life`` of age;
        running leases count up to ``now``."""
        rows = await self._rows(
            "SELECT tenant_id, sum(seconds * power(0.5, extract(epoch FROM %(now)s - ended_at)"
            " / %(half_life)s)) AS usage FROM ("
            " SELECT tenant_id, duration_seconds AS seconds, ended_at FROM usage_records"
            " WHERE ended_at > %(since)s"
            " UNION ALL SELECT tenant_id, extract(epoch FROM %(now)s - allocated_at), %(now)s"
            " FROM allocations WHERE status = 'active') u GROUP BY tenant_id",
            {"now": now, "since": now - window, "half_life": half_life.total_seconds()},
        )
        return {r["tenant_id"]: float(r["usage"] or 0.0) for r in rows}
