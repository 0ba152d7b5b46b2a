"""SQL reads behind the fleet statistics: per-node capacity and lease usage, device counts,
the lease intervals of a time window, and the console's tasks."""

from __future__ import annotations

import uuid
from datetime import datetime

from scheduler.adapters.sql_base import SqlRepository
from scheduler.adapters.sql_leases import scope_sql
from scheduler.domain.identity import Scope
from scheduler.domain.resources import Resources
from scheduler.domain.tasks import Task, TaskSource, TaskStatus, native_statuses
from scheduler.domain.usage_stats import FleetGauges, LeaseInterval, NodeTotals

#: Every node, with what its active leases use (one row per node).
NODE_TOTALS = """
SELECT n.id, n.status, n.cpu_cores, n.memory_mb, n.storage_mb, n.max_devices,
    coalesce(sum(a.cpu_cores), 0) AS leased_cpu, coalesce(sum(a.memory_mb), 0) AS leased_mem,
    coalesce(sum(a.storage_mb), 0) AS leased_sto, count(a.id) AS leased_devices
FROM nodes n
LEFT JOIN devices d ON d.node_id = n.id
LEFT JOIN allocations a ON a.device_id = d.id AND a.status = 'active'
WHERE n.status <> 'removed'
GROUP BY n.id
"""

#: Leases and the entries still shown as themselves, newest first; each side reads its
#: listing index (an entry's priority: the one it had when last ranked).
TASKS = """
SELECT * FROM (
    SELECT id, 'lease' AS source, status, device_id,
        (SELECT node_id FROM devices WHERE devices.id = allocations.device_id) AS node_id,
        coalesce((SELECT q.priority FROM queue_entries q WHERE q.allocation_id = allocations.id
            LIMIT 1), 0) AS priority,
        allocated_at AS created_at, allocated_at AS started_at
    FROM allocations WHERE {scope} AND status = ANY(%(leases)s)
    UNION ALL
    SELECT id, 'queue', status, NULL, NULL, coalesce(priority, 0), submitted_at, NULL
    FROM queue_entries WHERE {scope} AND status = ANY(%(entries)s)
) tasks ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s
"""
TASK_COUNT = """
SELECT (SELECT count(*) FROM allocations WHERE {scope} AND status = ANY(%(leases)s))
    + (SELECT count(*) FROM queue_entries WHERE {scope} AND status = ANY(%(entries)s)) AS n
"""


class SqlStatsRepository(SqlRepository):
    async def node_totals(self) -> dict[uuid.UUID, NodeTotals]:
        return {
            r["id"]: NodeTotals(
                status=r["status"],
                capacity=Resources(r["cpu_cores"], r["memory_mb"], r["storage_mb"]),
                max_devices=r["max_devices"],
                leased=Resources(r["leased_cpu"], int(r["leased_mem"]), int(r["leased_sto"])),
                leased_devices=int(r["leased_devices"]),
            )
            for r in await self._rows(NODE_TOTALS)
        }

    async def device_counts(self, node_id: uuid.UUID | None = None) -> dict[str, int]:
        """Devices by status, of one node or of all."""
        rows = await self._rows(
            "SELECT status, count(*) AS n FROM devices"
            " WHERE %(node)s::uuid IS NULL OR node_id = %(node)s GROUP BY status",
            {"node": node_id},
        )
        return {r["status"]: int(r["n"]) for r in rows}

    async def lease_intervals(
        self, since: datetime, now: datetime, node_id: uuid.UUID | None = None
    ) -> list[LeaseInterval]:
        """Every lease that held a device of the node (or of any) between ``since`` and
        ``now``: ended ones from their usage records, running ones from their allocation."""
        rows = await self._rows(
            "SELECT u.started_at AS start, u.ended_at AS end FROM usage_records u"
            " WHERE u.ended_at >= %(since)s AND u.started_at <= %(now)s"
            " AND (%(node)s::uuid IS NULL OR u.device_id IN"
            " (SELECT id FROM devices WHERE node_id = %(node)s))"
            " UNION ALL SELECT a.allocated_at, NULL FROM allocations a"
            " WHERE a.status = 'active' AND a.allocated_at <= %(now)s"
            " AND (%(node)s::uuid IS NULL OR a.device_id IN"
            " (SELECT id FROM devices WHERE node_id = %(node)s))",
            {"since": since, "now": now, "node": node_id},
        )
        return [LeaseInterval(r["start"], r["end"]) for r in rows]

    async def gauges(self, now: datetime, silent_since: datetime) -> FleetGauges:
        """The metrics' gauges (``silent_since``: a ready node not heard from since then
        missed its heartbeats)."""
        devices = await self._rows(
            "SELECT n.name, d.status, count(*) AS n FROM devices d JOIN nodes n"
            " ON n.id = d.node_id WHERE d.status <> 'retired' GROUP BY n.name, d.status"
        )
        leases = await self._rows(
            "SELECT t.tier, count(*) AS n FROM allocations a JOIN tenants t ON t.id = a.tenant_id"
            " WHERE a.status = 'active' GROUP BY t.tier"
        )
        queue = await self._rows(
            "SELECT tier, count(*) AS n, min(submitted_at) AS oldest FROM queue_entries"
            " WHERE status = 'waiting' GROUP BY tier"
        )
        outbox = await self._row(
            "SELECT count(*) AS n, min(occurred_at) AS oldest FROM outbox_events"
            " WHERE relayed_at IS NULL"
        )
        silent = await self._row(
            "SELECT count(*) AS n FROM nodes WHERE status IN ('ready', 'cordoned',"
            " 'maintenance', 'draining') AND coalesce(last_heartbeat_at, created_at)"
            " < %(since)s",
            {"since": silent_since},
        )
        oldest = outbox["oldest"] if outbox else None
        return FleetGauges(
            devices={(r["name"], r["status"]): int(r["n"]) for r in devices},
            leases_by_tier={r["tier"]: int(r["n"]) for r in leases},
            waiting_by_tier={r["tier"]: int(r["n"]) for r in queue},
            oldest_wait_by_tier={
                r["tier"]: max(0.0, (now - r["oldest"]).total_seconds()) for r in queue
            },
            outbox_backlog=int(outbox["n"]) if outbox else 0,
            relay_lag_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
            nodes_silent=int(silent["n"]) if silent else 0,
        )

    async def tasks(
        self, scope: Scope, status: TaskStatus | None, offset: int, limit: int
    ) -> tuple[list[Task], int]:
        """A page of the tasks ``scope`` may see (of ``status``, or all), and how many there
        are."""
        params = {
            "leases": list(native_statuses(TaskSource.LEASE, status)),
            "entries": list(native_statuses(TaskSource.QUEUE, status)),
            "offset": offset,
            "limit": limit,
        }
        where = scope_sql(scope, params)
        count = await self._row(TASK_COUNT.format(scope=where), params)
        rows = await self._rows(TASKS.format(scope=where), params)
        tasks = [
            Task(
                id=r["id"],
                source=TaskSource(r["source"]),
                state=r["status"],
                device_id=r["device_id"],
                node_id=r["node_id"],
                priority=float(r["priority"]),
                created_at=r["created_at"],
                started_at=r["started_at"],
            )
            for r in rows
        ]
        return tasks, int(count["n"]) if count else 0
