"""SQL repositories of allocations and usage records."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from scheduler.adapters.db_errors import translate_db_errors
from scheduler.adapters.recent_candidates import RecentCandidates
from scheduler.adapters.sql_base import (
    Row,
    SqlRepository,
    decode_cursor,
    encode_cursor,
    timestamp,
)
from scheduler.adapters.sql_candidates import (
    NOT_BOOKED_BEFORE_LEASE_END,
    matching_clauses,
    tolerated,
)
from scheduler.adapters.sql_fleet import DEVICE_COLUMNS, device_from_row
from scheduler.adapters.sql_tenancy import LOCK_TENANT
from scheduler.domain.allocations import Allocation, AllocationStatus, UsageRecord
from scheduler.domain.fleet import Device
from scheduler.domain.identity import Scope
from scheduler.domain.resources import DeviceRequirements, Resources
from scheduler.domain.usage_stats import UsageTotal
from scheduler.services.commands import AllocationFilter, Page, PendingLease

ALLOCATION_COLUMNS = (
    "id, device_id, tenant_id, user_id, status, allocated_at, expires_at, ended_at, end_reason,"
    " cpu_cores, memory_mb, storage_mb, extension_count, revoke_at"
)
EXPIRING_SOON = timedelta(minutes=10)
#: How many ranked devices each grant statement tries: a short first batch (it almost always
#: wins), then long ones under contention.
CLAIM_BATCHES = (8, 256)

#: The first still-available, unbooked device of ``%(ids)s`` (in their order), held.
FIRST_OF_IDS = f"""
        SELECT c.id FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS r(id, pos)
        JOIN devices c ON c.id = r.id
        WHERE c.status = 'available' AND {NOT_BOOKED_BEFORE_LEASE_END.replace("d.id", "c.id")}
        ORDER BY r.pos LIMIT 1
        FOR UPDATE OF c SKIP LOCKED"""


def grant_steps(first_device: str) -> str:
    """Claim the device ``first_device`` selects, charge the tenant, insert the lease."""
    return f"""
WITH claimed AS (
    UPDATE devices d SET status = 'allocated', status_changed_at = %(at)s
    WHERE d.id = ({first_device})
    RETURNING {DEVICE_COLUMNS}
), charged AS (
    UPDATE tenants t SET used_devices = t.used_devices + 1,
        used_cpu_cores = t.used_cpu_cores + c.cpu_cores,
        used_memory_mb = t.used_memory_mb + c.memory_mb,
        used_storage_mb = t.used_storage_mb + c.storage_mb
    FROM claimed c
    WHERE t.id = %(tenant_id)s
        -- the tenant's pending bookings during the lease count against its device quota
        AND t.used_devices + 1 + (SELECT count(*) FROM reservations r
            WHERE r.tenant_id = t.id AND r.status = 'pending'
            AND r.prewarm_at < %(expires_at)s AND r.end_time > %(at)s) <= t.max_devices
        AND t.used_cpu_cores + c.cpu_cores <= t.max_cpu_cores + 1e-6
        AND t.used_memory_mb + c.memory_mb <= t.max_memory_mb
        AND t.used_storage_mb + c.storage_mb <= t.max_storage_mb
    RETURNING t.id
), granted AS (
    INSERT INTO allocations (id, device_id, tenant_id, user_id, status, allocated_at, expires_at,
        cpu_cores, memory_mb, storage_mb)
    SELECT %(id)s, c.id, %(tenant_id)s, %(user_id)s, 'active', %(at)s, %(expires_at)s,
        c.cpu_cores, c.memory_mb, c.storage_mb
    FROM claimed c, charged
    RETURNING id
)"""


def first_matching(
    requirements: DeviceRequirements, ranked_by: str | None = None
) -> tuple[str, dict[str, Any]]:
    """``FIRST_OF_IDS`` that also checks each device against ``requirements`` again: its
    labels and size, on a ready, untainted node (for ids not read in this transaction); with
    ``ranked_by``, only while that is the placement strategy."""
    assert not requirements.tolerations, "taints are matched in Python"
    clauses, params = matching_clauses(requirements)
    if ranked_by is not None:
        clauses.append("(SELECT strategy FROM scheduler_config) = %(ranked_by)s")
        params["ranked_by"] = ranked_by
    return (
        "SELECT d.id FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS r(id, pos)"
        " JOIN devices d ON d.id = r.id JOIN nodes n ON n.id = d.node_id"
        f" WHERE d.status = 'available' AND {NOT_BOOKED_BEFORE_LEASE_END}"
        f" AND {' AND '.join(clauses)} ORDER BY r.pos LIMIT 1 FOR UPDATE OF d SKIP LOCKED"
    ), params


#: The grant sent with its transaction's COMMIT: it refuses (aborting the transaction) unless
#: it leased one of the devices, so the commit never keeps half of it.
OR_REFUSE = (
    " SELECT c.id, CASE WHEN c.id IS NULL THEN phonefleet_refuse(CASE WHEN EXISTS"
    " (SELECT 1 FROM claimed) THEN 'quota' ELSE 'taken' END) END AS refused"
    " FROM (SELECT 1) one LEFT JOIN (SELECT claimed.id FROM claimed, granted) c ON TRUE"
)
#: ``OR_REFUSE`` for a grant ranked without reading the tenant: whatever the reason, it
#: refuses as taken, and the command runs again reading everything (``ClaimContended``).
OR_REFUSE_AS_TAKEN = (
    " SELECT c.id, CASE WHEN c.id IS NULL THEN phonefleet_refuse('taken') END AS refused"
    " FROM (SELECT 1) one LEFT JOIN (SELECT claimed.id FROM claimed, granted) c ON TRUE"
)
GRANT_STEPS = grant_steps(FIRST_OF_IDS)
GRANT_RESULT = " SELECT d.*, EXISTS (SELECT 1 FROM granted) AS granted FROM claimed d"
GRANT = GRANT_STEPS + GRANT_RESULT
GRANT_OR_REFUSE = GRANT_STEPS + OR_REFUSE


def _grant_params(lease: PendingLease, device_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    """The parameters of ``GRANT`` and ``GRANT_OR_REFUSE``."""
    return {
        "ids": list(device_ids),
        "id": lease.id,
        "tenant_id": lease.tenant_id,
        "user_id": lease.user_id,
        "at": lease.allocated_at,
        "expires_at": lease.expires_at,
        "lease_end": lease.expires_at,
    }


def allocation_from_row(row: Row) -> Allocation:
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
        revoke_at=row.get("revoke_at"),
    )


def scope_sql(scope: Scope, params: dict[str, Any]) -> str:
    clauses = []
    if scope.tenant_id is not None:
        clauses.append("tenant_id = %(scope_tenant)s")
        params["scope_tenant"] = scope.tenant_id
    if scope.user_id is not None:
        clauses.append("user_id = %(scope_user)s")
        params["scope_user"] = scope.user_id
    return " AND ".join(clauses) or "TRUE"


class SqlAllocationRepository(SqlRepository):
    def __init__(
        self, connection: AsyncConnection[Row], recent: RecentCandidates | None = None
    ) -> None:
        super().__init__(connection)
        self._recent = recent

    def _taken(self, device_ids: Sequence[uuid.UUID]) -> None:
        """Devices this process is granting: out of its kept candidate reads."""
        if self._recent is not None:
            self._recent.taken(device_ids)

    async def grant(
        self, lease: PendingLease, ranked_device_ids: Sequence[uuid.UUID]
    ) -> tuple[Device, bool] | None:
        """Claim the first still-available device of ``ranked_device_ids`` (skipping those
        other transactions hold), charge the tenant and insert the lease: one statement."""
        start = 0
        for attempt in itertools.count():
            if start >= len(ranked_device_ids):
                return None
            batch = CLAIM_BATCHES[min(attempt, len(CLAIM_BATCHES) - 1)]
            ids, start = list(ranked_device_ids[start : start + batch]), start + batch
            row = await self._row(GRANT, _grant_params(lease, ids))
            if row is not None:
                self._taken([row["id"]])
                return device_from_row(row), bool(row["granted"])
        raise AssertionError("unreachable")

    async def grant_planned(
        self,
        lease: PendingLease,
        device_ids: Sequence[uuid.UUID],
        requirements: DeviceRequirements,
    ) -> tuple[Device, bool] | None:
        """``grant`` of a plan's devices without reading the fleet: the first of
        ``device_ids`` that still matches ``requirements`` on a ready, untainted node (all
        checked again in the statement), the tenant's row locked first as a fresh read's
        grant holds it. For requests that tolerate no taint (taints are otherwise matched
        in Python)."""
        first, params = first_matching(requirements)
        self._taken(device_ids)
        with translate_db_errors():
            await self._connection.execute(LOCK_TENANT, {"id": lease.tenant_id})
            cursor = await self._connection.execute(
                grant_steps(first) + GRANT_RESULT,
                {**params, **_grant_params(lease, device_ids)},
            )
            row = await cursor.fetchone()
        return (device_from_row(row), bool(row["granted"])) if row else None

    async def grant_at_commit(
        self,
        lease: PendingLease,
        device_ids: Sequence[uuid.UUID],
        matching: DeviceRequirements | None = None,
        *,
        ranked_by: str | None = None,
    ) -> Callable[[], Awaitable[uuid.UUID]]:
        """Send (not read) the grant of the first still-available device of ``device_ids``
        (with ``matching``: that still matches it, on a ready, untainted node; with
        ``ranked_by``: while that is the strategy): the transaction's ``COMMIT`` goes with
        it. The call returned reads, once committed, which device the lease got. A grant
        that leased none makes the commit fail with ``ClaimContended`` (every device was
        taken; with ``ranked_by``, any refusal) or ``QuotaExceeded``."""
        query, params = GRANT_OR_REFUSE, _grant_params(lease, device_ids)
        if matching is not None:
            first, clause_params = first_matching(matching, ranked_by)
            refuse = OR_REFUSE_AS_TAKEN if ranked_by is not None else OR_REFUSE
            query, params = grant_steps(first) + refuse, {**clause_params, **params}
        with translate_db_errors():
            cursor = await self._connection.execute(query, params)

        async def granted_device() -> uuid.UUID:
            with translate_db_errors():
                row = await cursor.fetchone()
            assert row is not None and row["id"] is not None, "a refused grant cannot commit"
            device_id = uuid.UUID(str(row["id"]))
            self._taken([device_id])
            return device_id

        return granted_device

    async def get(
        self, allocation_id: uuid.UUID, scope: Scope, *, lock: bool = False
    ) -> Allocation | None:
        params: dict[str, Any] = {"id": allocation_id}
        row = await self._row(
            f"SELECT {ALLOCATION_COLUMNS} FROM allocations WHERE id = %(id)s AND "
            + scope_sql(scope, params)
            + (" FOR UPDATE" if lock else ""),
            params,
        )
        return allocation_from_row(row) if row else None

    async def lock_with_node(
        self,
        scope: Scope,
        *,
        allocation_id: uuid.UUID | None = None,
        device_id: uuid.UUID | None = None,
    ) -> tuple[Allocation, uuid.UUID] | None:
        """The lease with ``allocation_id`` (or the active one on ``device_id``), held, and
        the node of its device: one read."""
        params: dict[str, Any] = {"id": allocation_id, "device_id": device_id}
        where = (
            "id = %(id)s"
            if allocation_id is not None
            else ("device_id = %(device_id)s AND status = 'active'")
        )
        row = await self._row(
            "SELECT a.*, (SELECT d.node_id FROM devices d WHERE d.id = a.device_id) AS node_id"
            f" FROM (SELECT {ALLOCATION_COLUMNS} FROM allocations WHERE {where} AND "
            + scope_sql(scope, params)
            + " FOR UPDATE) a",
            params,
        )
        return (allocation_from_row(row), row["node_id"]) if row else None

    async def lock_active_on(
        self, *, device_ids: Sequence[uuid.UUID] = (), node_ids: Sequence[uuid.UUID] = ()
    ) -> list[Allocation]:
        """The active leases on these devices or on these nodes' devices, held."""
        rows = await self._rows(
            f"SELECT {ALLOCATION_COLUMNS} FROM allocations WHERE status = 'active' AND"
            " (device_id = ANY(%(devices)s) OR device_id IN"
            " (SELECT id FROM devices WHERE node_id = ANY(%(nodes)s)))"
            " ORDER BY id FOR UPDATE",
            {"devices": list(device_ids), "nodes": list(node_ids)},
        )
        return [allocation_from_row(r) for r in rows]

    async def lock_active_of(self, holder: Scope) -> list[Allocation]:
        """The active leases of a user (in every tenant) or of a tenant, oldest first, held."""
        params: dict[str, Any] = {}
        rows = await self._rows(
            f"SELECT {ALLOCATION_COLUMNS} FROM allocations WHERE status = 'active'"
            f" AND {scope_sql(holder, params)} ORDER BY allocated_at, id FOR UPDATE",
            params,
        )
        return [allocation_from_row(r) for r in rows]

    async def movable(self, ends_after: datetime) -> list[Allocation]:
        """Active leases a rebalance may move: on an allocated device of a ready node, not
        marked for revocation, ending after ``ends_after``."""
        rows = await self._rows(
            f"SELECT {ALLOCATION_COLUMNS} FROM allocations WHERE status = 'active'"
            " AND revoke_at IS NULL AND expires_at > %(ends_after)s AND device_id IN"
            " (SELECT d.id FROM devices d JOIN nodes n ON n.id = d.node_id"
            " WHERE d.status = 'allocated' AND n.status = 'ready') ORDER BY allocated_at, id",
            {"ends_after": ends_after},
        )
        return [allocation_from_row(r) for r in rows]

    async def move(
        self, allocation_id: uuid.UUID, from_device: uuid.UUID, to_device: uuid.UUID
    ) -> None:
        """Put an active lease (held) on another device; it keeps its id, expiry and bill."""
        await self._send(
            "UPDATE allocations SET device_id = %(to)s, moved_from = %(from)s"
            " WHERE id = %(id)s AND status = 'active' AND device_id = %(from)s",
            {"id": allocation_id, "from": from_device, "to": to_device},
        )

    async def extend(self, allocation_id: uuid.UUID, expires_at: datetime) -> None:
        """Move the expiry of an active lease (held by the caller); a new warning is due."""
        await self._send(
            "UPDATE allocations SET expires_at = %(expires_at)s,"
            " extension_count = extension_count + 1, warned_at = NULL"
            " WHERE id = %(id)s AND status = 'active'",
            {"id": allocation_id, "expires_at": expires_at},
        )

    async def lock_unwarned(self, before: datetime, limit: int) -> list[Allocation]:
        """Active leases expiring by ``before`` whose owner was not warned yet (held)."""
        rows = await self._rows(
            f"SELECT {ALLOCATION_COLUMNS} FROM allocations WHERE status = 'active'"
            " AND warned_at IS NULL AND expires_at <= %(before)s ORDER BY expires_at"
            " LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
            {"before": before, "limit": limit},
        )
        return [allocation_from_row(r) for r in rows]

    async def mark_warned(self, allocation_ids: Sequence[uuid.UUID], now: datetime) -> None:
        await self._send(
            "UPDATE allocations SET warned_at = %(now)s WHERE id = ANY(%(ids)s)",
            {"ids": list(allocation_ids), "now": now},
        )

    async def end(
        self,
        allocation_id: uuid.UUID,
        status: AllocationStatus,
        ended_at: datetime,
        reason: str,
    ) -> None:
        await self._send(
            "UPDATE allocations SET status = %(status)s, ended_at = %(ended_at)s,"
            " end_reason = %(reason)s WHERE id = %(id)s AND status = 'active'",
            {"id": allocation_id, "status": status.value, "ended_at": ended_at, "reason": reason},
        )

    async def lock_due(self, now: datetime, limit: int) -> list[Allocation]:
        rows = await self._rows(
            f"SELECT {ALLOCATION_COLUMNS} FROM allocations WHERE status = 'active'"
            " AND expires_at <= %(now)s ORDER BY expires_at LIMIT %(limit)s"
            " FOR UPDATE SKIP LOCKED",
            {"now": now, "limit": limit},
        )
        return [allocation_from_row(r) for r in rows]

    async def next_expiry(self) -> datetime | None:
        """The next second at which a lease expires or is revoked."""
        row = await self._row(
            "SELECT min(least(expires_at, coalesce(revoke_at, expires_at))) AS due"
            " FROM allocations WHERE status = 'active'"
        )
        return row["due"] if row else None

    async def find_preemptible(
        self,
        requirements: DeviceRequirements,
        tiers: Sequence[str],
        exclude_tenant: uuid.UUID,
    ) -> Allocation | None:
        """The active lease of a preemptible tier, on a device that matches, that ends soonest
        and is not already marked: held, so two drains cannot mark it twice."""
        clauses, params = matching_clauses(requirements)
        params.update(tiers=list(tiers), tenant=exclude_tenant)
        rows = await self._rows(
            f"SELECT {', '.join('a.' + c.strip() for c in ALLOCATION_COLUMNS.split(','))},"
            " n.taints FROM allocations a JOIN tenants t ON t.id = a.tenant_id"
            " JOIN devices d ON d.id = a.device_id JOIN nodes n ON n.id = d.node_id"
            " WHERE a.status = 'active' AND a.revoke_at IS NULL AND t.tier = ANY(%(tiers)s)"
            " AND a.tenant_id <> %(tenant)s AND "
            + " AND ".join(clauses)
            + " ORDER BY a.expires_at LIMIT 16 FOR UPDATE OF a SKIP LOCKED",
            params,
        )
        rows = tolerated(rows, requirements)
        return allocation_from_row(rows[0]) if rows else None

    async def preemption_pending(self, entry_id: uuid.UUID) -> bool:
        row = await self._row(
            "SELECT 1 AS x FROM allocations WHERE preempted_for = %(entry)s AND status = 'active'",
            {"entry": entry_id},
        )
        return row is not None

    async def mark_for_revocation(
        self, allocation_id: uuid.UUID, revoke_at: datetime, entry_id: uuid.UUID
    ) -> None:
        await self._send(
            "UPDATE allocations SET revoke_at = %(at)s, preempted_for = %(entry)s"
            " WHERE id = %(id)s AND status = 'active'",
            {"id": allocation_id, "at": revoke_at, "entry": entry_id},
        )

    async def clear_revocation(self, allocation_id: uuid.UUID) -> None:
        await self._send(
            "UPDATE allocations SET revoke_at = NULL, preempted_for = NULL WHERE id = %(id)s",
            {"id": allocation_id},
        )

    async def lock_revocations_due(
        self, now: datetime, limit: int
    ) -> list[tuple[Allocation, uuid.UUID, bool]]:
        """Leases marked for revocation whose grace has run out: each with the entry it is
        revoked for and whether that entry still waits."""
        rows = await self._rows(
            f"SELECT {', '.join('a.' + c.strip() for c in ALLOCATION_COLUMNS.split(','))},"
            " a.preempted_for, q.status = 'waiting' AS still_waiting FROM allocations a"
            " JOIN queue_entries q ON q.id = a.preempted_for WHERE a.status = 'active'"
            " AND a.revoke_at <= %(now)s ORDER BY a.revoke_at LIMIT %(limit)s"
            " FOR UPDATE OF a SKIP LOCKED",
            {"now": now, "limit": limit},
        )
        return [
            (allocation_from_row(r), r["preempted_for"], bool(r["still_waiting"])) for r in rows
        ]

    async def list(self, scope: Scope, query: AllocationFilter) -> Page[Allocation]:
        params: dict[str, Any] = {"limit": query.limit + 1}
        where = scope_sql(scope, params)
        if query.user_id is not None:
            where += " AND user_id = %(user_id)s"
            params["user_id"] = query.user_id
        if query.status is not None:
            where += " AND status = %(status)s"
            params["status"] = query.status
        total = await self._row(f"SELECT count(*) AS n FROM allocations WHERE {where}", params)
        if query.cursor:
            at, last_id = decode_cursor(query.cursor, timestamp, uuid.UUID)
            where += " AND (allocated_at, id) < (%(c_at)s::timestamptz, %(c_id)s::uuid)"
            params.update(c_at=at, c_id=last_id)
        rows = await self._rows(
            f"SELECT {ALLOCATION_COLUMNS} FROM allocations WHERE {where}"
            " ORDER BY allocated_at DESC, id DESC LIMIT %(limit)s",
            params,
        )
        items = [allocation_from_row(r) for r in rows[: query.limit]]
        next_cursor = None
        if len(rows) > query.limit:
            next_cursor = encode_cursor(items[-1].allocated_at.isoformat(), items[-1].id)
        return Page(items, int(total["n"]) if total else 0, next_cursor)

    async def stats(self, scope: Scope, now: datetime) -> dict[str, Any]:
        params: dict[str, Any] = {"soon": now + EXPIRING_SOON}
        where = scope_sql(scope, params)
        row = await self._row(
            "SELECT count(*) AS total,"
            " count(*) FILTER (WHERE status = 'active') AS active,"
            " count(*) FILTER (WHERE status = 'released') AS released,"
            " count(*) FILTER (WHERE status = 'expired') AS expired,"
            " count(*) FILTER (WHERE status = 'revoked') AS revoked,"
            " count(*) FILTER (WHERE status = 'active' AND expires_at <= %(soon)s)"
            "   AS expiring_soon,"
            " count(DISTINCT user_id) AS users,"
            " coalesce(avg(extract(epoch FROM ended_at - allocated_at))"
            "   FILTER (WHERE ended_at IS NOT NULL), 0) AS avg_duration_seconds"
            f" FROM allocations WHERE {where}",
            params,
        )
        assert row is not None
        return {k: (float(v) if k == "avg_duration_seconds" else int(v)) for k, v in row.items()}


class SqlUsageRepository(SqlRepository):
    async def add(self, record: UsageRecord, now: datetime) -> None:
        await self._send(
            "INSERT INTO usage_records (id, allocation_id, tenant_id, user_id, device_id,"
            " started_at, ended_at, duration_seconds, cpu_cores, memory_mb, storage_mb,"
            " end_reason, created_at) VALUES (%(id)s, %(allocation_id)s, %(tenant_id)s,"
            " %(user_id)s, %(device_id)s, %(started_at)s, %(ended_at)s, %(duration)s, %(cpu)s,"
            " %(mem)s, %(sto)s, %(reason)s, %(now)s)",
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

    async def totals(
        self, start: datetime, end: datetime, tenant_id: uuid.UUID | None
    ) -> list[UsageTotal]:
        """Per tenant, user and device, the usage records that overlap ``[start, end)``, their
        seconds within it (a record wholly inside counts its own whole seconds)."""
        rows = await self._rows(
            "WITH clipped AS (SELECT tenant_id, user_id, device_id, cpu_cores, memory_mb,"
            " storage_mb, CASE WHEN started_at >= %(start)s AND ended_at <= %(end)s"
            " THEN duration_seconds::bigint ELSE floor(extract(epoch FROM"
            " least(ended_at, %(end)s) - greatest(started_at, %(start)s)))::bigint END AS s"
            " FROM usage_records WHERE ended_at > %(start)s AND started_at < %(end)s"
            " AND (%(tenant)s::uuid IS NULL OR tenant_id = %(tenant)s))"
            " SELECT CASE WHEN GROUPING(user_id) = 0 THEN 'user'"
            " WHEN GROUPING(device_id) = 0 THEN 'device' ELSE 'tenant' END AS level,"
            " tenant_id, user_id, device_id, count(*) AS leases, sum(s) AS seconds,"
            " sum(s * cpu_cores) AS core_seconds, sum(s * memory_mb) AS memory_mb_seconds,"
            " sum(s * storage_mb) AS storage_mb_seconds FROM clipped"
            " GROUP BY GROUPING SETS ((tenant_id), (tenant_id, user_id), (tenant_id, device_id))"
            " ORDER BY tenant_id, CASE WHEN GROUPING(user_id) = 0 THEN 1"
            " WHEN GROUPING(device_id) = 0 THEN 2 ELSE 0 END, user_id, device_id",
            {"start": start, "end": end, "tenant": tenant_id},
        )
        return [
            UsageTotal(
                level=r["level"],
                tenant_id=r["tenant_id"],
                user_id=r["user_id"],
                device_id=r["device_id"],
                leases=r["leases"],
                seconds=int(r["seconds"]),
                core_seconds=float(r["core_seconds"]),
                memory_mb_seconds=int(r["memory_mb_seconds"]),
                storage_mb_seconds=int(r["storage_mb_seconds"]),
            )
            for r in rows
        ]
