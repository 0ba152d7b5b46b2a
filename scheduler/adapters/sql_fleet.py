"""SQL repositories of nodes and devices."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from scheduler.adapters.db_errors import translate_db_errors
from scheduler.adapters.recent_candidates import KeptRead, RecentCandidates
from scheduler.adapters.sql_base import (
    Row,
    SqlRepository,
    decode_cursor,
    encode_cursor,
    text,
)
from scheduler.adapters.sql_candidates import (
    CLASS_SAMPLE,
    NOT_BOOKED_BEFORE_LEASE_END,
    candidate_query,
    class_candidates,
    detailed_devices,
    matching_clauses,
    tolerated,
)
from scheduler.adapters.sql_tenancy import LOCK_TENANT, READ_TENANT, tenant_from_row
from scheduler.domain.fleet import (
    ADB_BASE_PORT,
    Device,
    DeviceSpec,
    DeviceStatus,
    Drain,
    DrainMode,
    Node,
    NodeCapacity,
    NodeStatus,
)
from scheduler.domain.resources import DeviceRequirements, Resources, Taint
from scheduler.services.commands import Page
from scheduler.services.ports import PlacementSnapshot

DEVICE_COLUMNS = (
    "d.id, d.node_id, d.name, d.status, d.cpu_cores, d.memory_mb, d.storage_mb,"
    " d.android_version, d.labels, d.adb_host, d.adb_port, d.created_at"
)


#: The count of available devices on ready nodes without a join over the fleet: every
#: available device (an index-only scan of ``devices_available_v1``) less those on the few
#: nodes that are not ready (``nodes_not_ready_v1``). A third of the joined count's time at
#: 100,000 devices.
AVAILABLE_ON_READY_NODES = (
    "SELECT (SELECT count(*) FROM devices WHERE status = 'available')"
    " - (SELECT count(*) FROM devices d JOIN nodes n ON n.id = d.node_id"
    " WHERE d.status = 'available' AND n.status <> 'ready') AS n"
)


def device_from_row(row: Row) -> Device:
    return Device(
        id=row["id"],
        node_id=row["node_id"],
        name=row["name"],
        status=DeviceStatus(row["status"]),
        spec=DeviceSpec(
            Resources(row["cpu_cores"], row["memory_mb"], row["storage_mb"]),
            row["android_version"],
            row["labels"],
        ),
        adb_host=row["adb_host"],
        adb_port=row["adb_port"],
        created_at=row["created_at"],
    )


def node_from_row(row: Row) -> Node:
    return Node(
        id=row["id"],
        name=row["name"],
        capacity=NodeCapacity(
            Resources(row["cpu_cores"], row["memory_mb"], row["storage_mb"]),
            row["max_devices"],
            row.get("cpu_allocation_rate", 1.0),
            row.get("memory_allocation_rate", 1.0),
        ),
        labels=row["labels"],
        taints=tuple(Taint(**t) for t in row["taints"]),
        status=NodeStatus(row["status"]),
        host=row["host"],
        created_at=row["created_at"],
        last_heartbeat_at=row["last_heartbeat_at"],
        status_reason=row.get("status_reason"),
        drain=Drain(DrainMode(row["drain_mode"]), row["drain_deadline"], row["remove_when_drained"])
        if row.get("drain_mode")
        else None,
        port=row.get("port"),
    )


class SqlNodeRepository(SqlRepository):
    async def add(self, node: Node) -> None:
        resources = node.capacity.resources
        await self._send(
            "INSERT INTO nodes (id, name, cpu_cores, memory_mb, storage_mb, max_devices, labels,"
            " taints, status, host, port, created_at, cpu_allocation_rate, memory_allocation_rate)"
            " VALUES (%(id)s, %(name)s, %(cpu)s, %(mem)s, %(sto)s, %(max_devices)s, %(labels)s,"
            " %(taints)s, %(status)s, %(host)s, %(port)s, %(at)s, %(cpu_rate)s, %(mem_rate)s)",
            {
                "id": node.id,
                "name": node.name,
                "cpu": resources.cpu_cores,
                "mem": resources.memory_mb,
                "sto": resources.storage_mb,
                "max_devices": node.capacity.max_devices,
                "labels": Jsonb(node.labels),
                "taints": Jsonb(
                    [{"key": t.key, "value": t.value, "effect": t.effect} for t in node.taints]
                ),
                "status": node.status.value,
                "host": node.host,
                "port": node.port,
                "at": node.created_at,
                "cpu_rate": node.capacity.cpu_allocation_rate,
                "mem_rate": node.capacity.memory_allocation_rate,
            },
        )

    async def get(self, node_id: uuid.UUID, *, lock: bool = False) -> Node | None:
        query = "SELECT * FROM nodes WHERE id = %(id)s" + (" FOR UPDATE" if lock else "")
        row = await self._row(query, {"id": node_id})
        return node_from_row(row) if row else None

    async def list(self, *, removed: bool = False) -> list[Node]:
        """The nodes, by name (removed ones only if ``removed``)."""
        where = "" if removed else " WHERE status <> 'removed'"
        rows = await self._rows(f"SELECT * FROM nodes{where} ORDER BY name")
        return [node_from_row(r) for r in rows]

    async def ids(self) -> list[uuid.UUID]:
        # one row, one array: thousands of ids without a dict per row
        row = await self._row("SELECT array_agg(id) AS ids FROM nodes WHERE status <> 'removed'")
        return list(row["ids"] or []) if row else []

    async def update(self, node: Node) -> None:
        """Store its name, labels, taints and capacity."""
        resources = node.capacity.resources
        await self._send(
            "UPDATE nodes SET name = %(name)s, labels = %(labels)s, taints = %(taints)s,"
            " cpu_cores = %(cpu)s, memory_mb = %(mem)s, storage_mb = %(sto)s,"
            " max_devices = %(max_devices)s, cpu_allocation_rate = %(cpu_rate)s,"
            " memory_allocation_rate = %(mem_rate)s WHERE id = %(id)s",
            {
                "id": node.id,
                "name": node.name,
                "labels": Jsonb(node.labels),
                "taints": Jsonb(
                    [{"key": t.key, "value": t.value, "effect": t.effect} for t in node.taints]
                ),
                "cpu": resources.cpu_cores,
                "mem": resources.memory_mb,
                "sto": resources.storage_mb,
                "max_devices": node.capacity.max_devices,
                "cpu_rate": node.capacity.cpu_allocation_rate,
                "mem_rate": node.capacity.memory_allocation_rate,
            },
        )

    async def set_state(
        self, node_id: uuid.UUID, status: NodeStatus, reason: str | None, drain: Drain | None
    ) -> Node | None:
        """Its status, the reason for it and the drain under way (or none)."""
        row = await self._row(
            "UPDATE nodes SET status = %(status)s, status_reason = %(reason)s,"
            " drain_mode = %(mode)s, drain_deadline = %(deadline)s,"
            " remove_when_drained = %(remove)s WHERE id = %(id)s RETURNING *",
            {
                "id": node_id,
                "status": status.value,
                "reason": reason,
                "mode": drain.mode.value if drain else None,
                "deadline": drain.deadline if drain else None,
                "remove": drain.remove_when_drained if drain else False,
            },
        )
        return node_from_row(row) if row else None

    async def draining(self) -> list[Node]:
        """The nodes being drained, held (one drain step at a time)."""
        rows = await self._rows(
            "SELECT * FROM nodes WHERE status = 'draining' ORDER BY id FOR UPDATE SKIP LOCKED"
        )
        return [node_from_row(r) for r in rows]

    async def remove(self, node_id: uuid.UUID) -> list[uuid.UUID]:
        """Retire its devices and mark it removed (its name is freed for a new node); the
        devices it retired."""
        retired = await self._rows(
            "UPDATE devices SET status = 'retired' WHERE node_id = %(id)s"
            " AND status <> 'retired' RETURNING id",
            {"id": node_id},
        )
        await self._send(
            "UPDATE nodes SET status = 'removed', drain_mode = NULL, drain_deadline = NULL,"
            " remove_when_drained = false, name = left(name, 80) || ' (removed '"
            " || id::text || ')' WHERE id = %(id)s",
            {"id": node_id},
        )
        return [r["id"] for r in retired]

    async def holdings(self, node_id: uuid.UUID) -> tuple[int, int]:
        """The active leases and the bookings not yet ended on its devices."""
        return await _holdings(self, "d.node_id = %(id)s", node_id)

    async def mark_offline(self, silent_since: datetime) -> list[Node]:
        """Every node not offline whose agent sent no heartbeat since ``silent_since`` (never
        one: since its registration) goes offline, remembering its status."""
        rows = await self._rows(
            "UPDATE nodes SET status = 'offline', status_before_offline = status"
            " WHERE status NOT IN ('offline', 'removed')"
            " AND coalesce(last_heartbeat_at, created_at) < %(since)s RETURNING *",
            {"since": silent_since},
        )
        return [node_from_row(r) for r in rows]

    async def mark_online(self, heard_since: datetime) -> list[Node]:
        """Every offline node heard from since ``heard_since`` gets its status back."""
        rows = await self._rows(
            "UPDATE nodes SET status = coalesce(status_before_offline, 'ready'),"
            " status_before_offline = NULL WHERE status = 'offline'"
            " AND last_heartbeat_at >= %(since)s RETURNING *",
            {"since": heard_since},
        )
        return [node_from_row(r) for r in rows]

    async def set_status(self, node_id: uuid.UUID, status: NodeStatus) -> Node | None:
        row = await self._row(
            "UPDATE nodes SET status = %(status)s WHERE id = %(id)s RETURNING *",
            {"id": node_id, "status": status.value},
        )
        return node_from_row(row) if row else None

    async def heartbeat(self, node_ids: Sequence[uuid.UUID], now: datetime) -> None:
        await self._send(
            "UPDATE nodes SET last_heartbeat_at = %(now)s WHERE id = ANY(%(ids)s)",
            {"ids": list(node_ids), "now": now},
        )

    async def device_usage(self, node_id: uuid.UUID) -> tuple[Resources, int]:
        row = await self._row(
            "SELECT coalesce(sum(cpu_cores), 0) AS cpu, coalesce(sum(memory_mb), 0) AS mem,"
            " coalesce(sum(storage_mb), 0) AS sto, count(*) AS n FROM devices"
            " WHERE node_id = %(id)s AND status <> 'retired'",
            {"id": node_id},
        )
        assert row is not None
        return Resources(float(row["cpu"]), int(row["mem"]), int(row["sto"])), int(row["n"])

    async def usage_by_node(self) -> dict[uuid.UUID, tuple[Resources, int]]:
        rows = await self._rows(
            "SELECT node_id, sum(cpu_cores) AS cpu, sum(memory_mb) AS mem,"
            " sum(storage_mb) AS sto, count(*) AS n FROM devices"
            " WHERE status <> 'retired' GROUP BY node_id"
        )
        return {
            r["node_id"]: (Resources(float(r["cpu"]), int(r["mem"]), int(r["sto"])), int(r["n"]))
            for r in rows
        }

    async def device_counts(self) -> dict[uuid.UUID, dict[str, int]]:
        counts: dict[uuid.UUID, dict[str, int]] = {}
        for row in await self._rows(
            "SELECT node_id, status, count(*) AS n FROM devices GROUP BY node_id, status"
        ):
            counts.setdefault(row["node_id"], {})[row["status"]] = int(row["n"])
        return counts


class SqlDeviceRepository(SqlRepository):
    async def add_many(self, devices: Sequence[Device]) -> None:
        await self._send_many(
            "INSERT INTO devices (id, node_id, name, status, cpu_cores, memory_mb, storage_mb,"
            " android_version, labels, adb_host, adb_port, created_at, status_changed_at)"
            " VALUES (%(id)s, %(node_id)s, %(name)s, %(status)s, %(cpu)s, %(mem)s, %(sto)s,"
            " %(android)s, %(labels)s, %(adb_host)s, %(adb_port)s, %(at)s, %(at)s)",
            [
                {
                    "id": d.id,
                    "node_id": d.node_id,
                    "name": d.name,
                    "status": d.status.value,
                    "cpu": d.spec.resources.cpu_cores,
                    "mem": d.spec.resources.memory_mb,
                    "sto": d.spec.resources.storage_mb,
                    "android": d.spec.android_version,
                    "labels": Jsonb(d.spec.labels),
                    "adb_host": d.adb_host,
                    "adb_port": d.adb_port,
                    "at": d.created_at,
                }
                for d in devices
            ],
        )

    async def get(self, device_id: uuid.UUID) -> Device | None:
        row = await self._row(
            f"SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.id = %(id)s", {"id": device_id}
        )
        return device_from_row(row) if row else None

    async def get_many(self, device_ids: Sequence[uuid.UUID]) -> list[Device]:
        rows = await self._rows(
            f"SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.id = ANY(%(ids)s)",
            {"ids": list(device_ids)},
        )
        return [device_from_row(r) for r in rows]

    def __init__(
        self, connection: AsyncConnection[Row], recent: RecentCandidates | None = None
    ) -> None:
        super().__init__(connection)
        self._recent = recent

    async def placement_snapshot(
        self,
        tenant_id: uuid.UUID,
        requirements: DeviceRequirements,
        *,
        lock_tenant: bool = True,
        detailed: int = 0,
        recent: bool = False,
    ) -> PlacementSnapshot:
        """Read the tenant (its row locked to the end of the transaction unless
        ``lock_tenant`` is false), the matching available devices and the placement
        strategy, in one round trip (the statements are pipelined; the device read starts
        once the lock is held). With ``recent``, the candidates may be those this process
        read for the same requirements lately (``RecentCandidates``): nothing is read then,
        not even the tenant. Such candidates (kept, or read to be kept: ranked without this
        tenant's quota, every device read whole) make a ``shared`` snapshot."""
        kept_reads = self._recent if recent and not requirements.tolerations else None
        if kept_reads is not None and (kept := kept_reads.get(requirements)) is not None:
            candidates = class_candidates(kept.rows)
            return PlacementSnapshot(None, candidates, kept.strategy, kept.devices, shared=True)
        read_at = kept_reads.now() if kept_reads is not None else 0.0
        # what is kept serves every tenant: ranked without this one's quota
        query, params = candidate_query(requirements, None if kept_reads else tenant_id)
        params["detailed"] = CLASS_SAMPLE if kept_reads else detailed
        with translate_db_errors():
            tenant_cursor = await self._connection.execute(
                LOCK_TENANT if lock_tenant else READ_TENANT, {"id": tenant_id}
            )
            device_cursor = await self._connection.execute(query, params)
            strategy_cursor = await self._connection.execute(
                "SELECT strategy FROM scheduler_config"
            )
            tenant_row = await tenant_cursor.fetchone()
            rows = tolerated(await device_cursor.fetchall(), requirements)
            strategy_row = await strategy_cursor.fetchone()
        tenant = tenant_from_row(tenant_row) if tenant_row else None
        strategy = str(strategy_row["strategy"]) if strategy_row else "binpack"
        devices = detailed_devices(rows) if detailed or kept_reads else {}
        if kept_reads is not None:
            kept_reads.keep(requirements, KeptRead(read_at, strategy, rows, devices))
        shared = kept_reads is not None
        return PlacementSnapshot(tenant, class_candidates(rows), strategy, devices, shared)

    async def matching_states(
        self, requirements: DeviceRequirements
    ) -> list[tuple[uuid.UUID, DeviceStatus, datetime | None]]:
        """Every device that matches ``requirements`` and is or will become available: its
        id, its status and, when leased, its lease's expiry."""
        clauses, params = matching_clauses(requirements)
        rows = await self._rows(
            "SELECT d.id, d.status, a.expires_at, n.taints FROM devices d"
            " JOIN nodes n ON n.id = d.node_id"
            " LEFT JOIN allocations a ON a.device_id = d.id AND a.status = 'active'"
            " WHERE d.status IN ('available', 'allocated', 'resetting', 'provisioning') AND "
            + " AND ".join(clauses),
            params,
        )
        return [
            (r["id"], DeviceStatus(r["status"]), r["expires_at"])
            for r in tolerated(rows, requirements)
        ]

    async def transition(
        self,
        device_ids: Sequence[uuid.UUID],
        source: DeviceStatus,
        target: DeviceStatus,
        now: datetime,
    ) -> list[Device]:
        rows = await self._rows(
            "UPDATE devices d SET status = %(target)s, status_changed_at = %(now)s"
            " WHERE d.id = ANY(%(ids)s) AND d.status = %(source)s"
            f" RETURNING {DEVICE_COLUMNS}",
            {"ids": list(device_ids), "source": source.value, "target": target.value, "now": now},
        )
        return [device_from_row(r) for r in rows]

    async def set_labels(self, device_id: uuid.UUID, labels: dict[str, str]) -> Device | None:
        row = await self._row(
            "UPDATE devices d SET labels = %(labels)s WHERE d.id = %(id)s"
            f" AND d.status <> 'retired' RETURNING {DEVICE_COLUMNS}",
            {"id": device_id, "labels": Jsonb(labels)},
        )
        return device_from_row(row) if row else None

    async def retire(self, device_id: uuid.UUID, now: datetime) -> Device | None:
        """Retire a device (it no longer counts against its node); ``None``: already was."""
        row = await self._row(
            "UPDATE devices d SET status = 'retired', status_changed_at = %(now)s"
            f" WHERE d.id = %(id)s AND d.status <> 'retired' RETURNING {DEVICE_COLUMNS}",
            {"id": device_id, "now": now},
        )
        return device_from_row(row) if row else None

    async def holdings(self, device_id: uuid.UUID) -> tuple[int, int]:
        """Its active lease (0 or 1) and its bookings not yet ended."""
        return await _holdings(self, "d.id = %(id)s", device_id)

    async def mark_failed(self, device_id: uuid.UUID, now: datetime) -> Device | None:
        """Quarantine a device (any status but failed or retired); ``None``: it was not."""
        row = await self._row(
            "UPDATE devices d SET status = 'failed', status_changed_at = %(now)s"
            " WHERE d.id = %(id)s AND d.status NOT IN ('failed', 'retired')"
            f" RETURNING {DEVICE_COLUMNS}",
            {"id": device_id, "now": now},
        )
        return device_from_row(row) if row else None

    async def claim_replacement(
        self,
        device: Device,
        node_labels: dict[str, str],
        lease_end: datetime,
        now: datetime,
        *,
        other_node: bool,
        preferred_node: uuid.UUID | None = None,
        only: uuid.UUID | None = None,
    ) -> Device | None:
        """Claim (``allocated``) an available device that serves a lease of ``device`` as
        well: on a ready, untainted node (another one if ``other_node``; on
        ``preferred_node`` if one there is free); the same size and Android version; every
        label the device had with its node's; free of bookings until ``lease_end``. With
        ``only``, that device or none."""
        row = await self._row(
            "UPDATE devices d SET status = 'allocated', status_changed_at = %(now)s"
            " WHERE d.id = (SELECT c.id FROM devices c JOIN nodes n ON n.id = c.node_id"
            " WHERE c.status = 'available' AND n.status = 'ready' AND n.taints = '[]'::jsonb"
            " AND (NOT %(other_node)s OR c.node_id <> %(node)s)"
            " AND (%(only)s::uuid IS NULL OR c.id = %(only)s)"
            " AND c.cpu_cores = %(cpu)s AND c.memory_mb = %(mem)s"
            " AND c.storage_mb = %(sto)s AND c.android_version = %(android)s"
            " AND (n.labels || c.labels) @> %(labels)s AND "
            + NOT_BOOKED_BEFORE_LEASE_END.replace("d.id", "c.id")
            + " ORDER BY c.node_id IS DISTINCT FROM %(preferred)s, c.name"
            " LIMIT 1 FOR UPDATE OF c SKIP LOCKED)"
            f" RETURNING {DEVICE_COLUMNS}",
            {
                "node": device.node_id,
                "other_node": other_node,
                "preferred": preferred_node,
                "only": only,
                "cpu": device.spec.resources.cpu_cores,
                "mem": device.spec.resources.memory_mb,
                "sto": device.spec.resources.storage_mb,
                "android": device.spec.android_version,
                "labels": Jsonb({**node_labels, **device.spec.labels}),
                "lease_end": lease_end,
                "now": now,
            },
        )
        return device_from_row(row) if row else None

    async def send_transition(
        self,
        device_ids: Sequence[uuid.UUID],
        source: DeviceStatus,
        target: DeviceStatus,
        now: datetime,
    ) -> None:
        """``transition`` with nobody reading which devices it moved."""
        await self._send(
            "UPDATE devices d SET status = %(target)s, status_changed_at = %(now)s"
            " WHERE d.id = ANY(%(ids)s) AND d.status = %(source)s",
            {"ids": list(device_ids), "source": source.value, "target": target.value, "now": now},
        )

    async def list_available(
        self, labels: dict[str, str], limit: int, cursor: str | None, total: int | None = None
    ) -> Page[Device]:
        """A page of the available devices on ready nodes carrying ``labels``, and how many
        there are (counted unless ``total`` is given)."""
        where = "d.status = 'available' AND n.status = 'ready'"
        params: dict[str, Any] = {"limit": limit + 1}
        if labels:
            where += " AND (n.labels || d.labels) @> %(labels)s"
            params["labels"] = Jsonb(labels)
        if total is None:
            counted = await self._row(
                "SELECT count(*) AS n FROM devices d JOIN nodes n ON n.id = d.node_id"
                f" WHERE {where}"
                if labels
                else AVAILABLE_ON_READY_NODES,
                params,
            )
            total = int(counted["n"]) if counted else 0
        if cursor:
            name, device_id = decode_cursor(cursor, text, uuid.UUID)
            where += " AND (d.name, d.id) > (%(c_name)s, %(c_id)s::uuid)"
            params.update(c_name=name, c_id=device_id)
        rows = await self._rows(
            f"SELECT {DEVICE_COLUMNS} FROM devices d JOIN nodes n ON n.id = d.node_id"
            f" WHERE {where} ORDER BY d.name, d.id LIMIT %(limit)s",
            params,
        )
        items = [device_from_row(r) for r in rows[:limit]]
        next_cursor = encode_cursor(items[-1].name, items[-1].id) if len(rows) > limit else None
        return Page(items, total, next_cursor)

    async def shapes(self) -> list[Device]:
        """One device per node and distinct spec (sizes, Android version, labels) among those
        not retired: everything a request could ever be matched against, in few rows."""
        rows = await self._rows(
            f"SELECT DISTINCT ON (d.node_id, d.cpu_cores, d.memory_mb, d.storage_mb,"
            f" d.android_version, d.labels) {DEVICE_COLUMNS} FROM devices d"
            " WHERE d.status <> 'retired'"
        )
        return [device_from_row(r) for r in rows]

    async def occupying(self) -> list[Device]:
        """Every device that is not retired (it occupies its node)."""
        rows = await self._rows(
            f"SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.status <> 'retired' ORDER BY d.name"
        )
        return [device_from_row(r) for r in rows]

    async def booked(self) -> set[uuid.UUID]:
        """Devices with a booking still to come (a rebalance keeps leases off them)."""
        rows = await self._rows(
            "SELECT DISTINCT device_id FROM reservations WHERE status = 'pending'"
        )
        return {r["device_id"] for r in rows}

    async def in_status(
        self, node_ids: Sequence[uuid.UUID], statuses: Sequence[DeviceStatus]
    ) -> list[Device]:
        rows = await self._rows(
            f"SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.node_id = ANY(%(nodes)s)"
            " AND d.status = ANY(%(statuses)s)",
            {"nodes": list(node_ids), "statuses": [s.value for s in statuses]},
        )
        return [device_from_row(r) for r in rows]

    async def next_adb_port(self, host: str) -> int:
        """The first free ADB port on ``host``; serialized per host for this transaction."""
        await self._send("SELECT pg_advisory_xact_lock(hashtext(%(host)s))", {"host": host})
        row = await self._row(
            "SELECT max(adb_port) AS port FROM devices WHERE adb_host = %(host)s", {"host": host}
        )
        return ADB_BASE_PORT if row is None or row["port"] is None else int(row["port"]) + 1


async def _holdings(repository: SqlRepository, where: str, id_: uuid.UUID) -> tuple[int, int]:
    row = await repository._row(
        "SELECT (SELECT count(*) FROM allocations a JOIN devices d ON d.id = a.device_id"
        f" WHERE a.status = 'active' AND {where}) AS leases,"
        " (SELECT count(*) FROM reservations r JOIN devices d ON d.id = r.device_id"
        f" WHERE r.status IN ('pending', 'active') AND {where}) AS bookings",
        {"id": id_},
    )
    assert row is not None
    return int(row["leases"]), int(row["bookings"])
