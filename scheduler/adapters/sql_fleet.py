"""SQL repositories of nodes and devices."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.engine import RowMapping

from placement.model import CandidateDevices
from scheduler.adapters.sql_base import SqlRepository, as_json, decode_cursor, encode_cursor, sql
from scheduler.domain.fleet import (
    ADB_BASE_PORT,
    Device,
    DeviceSpec,
    DeviceStatus,
    Node,
    NodeCapacity,
    NodeStatus,
)
from scheduler.domain.resources import DeviceRequirements, Resources, Taint
from scheduler.services.commands import Page

DEVICE_COLUMNS = (
    "d.id, d.node_id, d.name, d.status, d.cpu_cores, d.memory_mb, d.storage_mb, "
    "d.android_version, d.labels, d.adb_host, d.adb_port, d.created_at"
)
CLAIM_CHUNK = 64


def device_from_row(row: RowMapping) -> Device:
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


def node_from_row(row: RowMapping) -> Node:
    return Node(
        id=row["id"],
        name=row["name"],
        capacity=NodeCapacity(
            Resources(row["cpu_cores"], row["memory_mb"], row["storage_mb"]), row["max_devices"]
        ),
        labels=row["labels"],
        taints=tuple(Taint(**t) for t in row["taints"]),
        status=NodeStatus(row["status"]),
        host=row["host"],
        created_at=row["created_at"],
        last_heartbeat_at=row["last_heartbeat_at"],
    )


class SqlNodeRepository(SqlRepository):
    async def add(self, node: Node) -> None:
        await self._rows(
            sql(
                "INSERT INTO nodes (id, name, cpu_cores, memory_mb, storage_mb, max_devices, labels,"
                " taints, status, host, created_at) VALUES (:id, :name, :cpu, :mem, :sto, :maxd,"
                " CAST(:labels AS jsonb), CAST(:taints AS jsonb), :status, :host, :created_at)"
            ),
            {
                "id": node.id,
                "name": node.name,
                "cpu": node.capacity.resources.cpu_cores,
                "mem": node.capacity.resources.memory_mb,
                "sto": node.capacity.resources.storage_mb,
                "maxd": node.capacity.max_devices,
                "labels": as_json(node.labels),
                "taints": as_json(
                    [{"key": t.key, "value": t.value, "effect": t.effect} for t in node.taints]
                ),
                "status": node.status.value,
                "host": node.host,
                "created_at": node.created_at,
            },
        )

    async def get(self, node_id: uuid.UUID, *, lock: bool = False) -> Node | None:
        row = await self._row(
            sql("SELECT * FROM nodes WHERE id = :id" + (" FOR UPDATE" if lock else "")),
            {"id": node_id},
        )
        return node_from_row(row) if row else None

    async def list(self) -> list[Node]:
        return [
            node_from_row(r) for r in await self._rows(sql("SELECT * FROM nodes ORDER BY name"))
        ]

    async def set_status(self, node_id: uuid.UUID, status: NodeStatus) -> Node | None:
        row = await self._row(
            sql("UPDATE nodes SET status = :status WHERE id = :id RETURNING *"),
            {"id": node_id, "status": status.value},
        )
        return node_from_row(row) if row else None

    async def heartbeat(self, node_ids: Sequence[uuid.UUID], now: datetime) -> None:
        await self._rows(
            sql("UPDATE nodes SET last_heartbeat_at = :now WHERE id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": list(node_ids), "now": now},
        )

    async def device_usage(self, node_id: uuid.UUID) -> tuple[Resources, int]:
        row = await self._row(
            sql(
                "SELECT coalesce(sum(cpu_cores), 0) AS cpu, coalesce(sum(memory_mb), 0) AS mem,"
                " coalesce(sum(storage_mb), 0) AS sto, count(*) AS n FROM devices"
                " WHERE node_id = :id AND status <> 'retired'"
            ),
            {"id": node_id},
        )
        assert row is not None
        return Resources(float(row["cpu"]), int(row["mem"]), int(row["sto"])), int(row["n"])

    async def device_counts(self) -> dict[uuid.UUID, dict[str, int]]:
        counts: dict[uuid.UUID, dict[str, int]] = {}
        for row in await self._rows(
            sql("SELECT node_id, status, count(*) AS n FROM devices GROUP BY node_id, status")
        ):
            counts.setdefault(row["node_id"], {})[row["status"]] = int(row["n"])
        return counts


class SqlDeviceRepository(SqlRepository):
    async def add_many(self, devices: Sequence[Device]) -> None:
        if not devices:
            return
        await self._rows(
            sql(
                "INSERT INTO devices (id, node_id, name, status, cpu_cores, memory_mb, storage_mb,"
                " android_version, labels, adb_host, adb_port, created_at, status_changed_at)"
                " VALUES (:id, :node_id, :name, :status, :cpu, :mem, :sto, :android,"
                " CAST(:labels AS jsonb), :adb_host, :adb_port, :created_at, :created_at)"
            ),
            [
                {  # type: ignore[arg-type]
                    "id": d.id,
                    "node_id": d.node_id,
                    "name": d.name,
                    "status": d.status.value,
                    "cpu": d.spec.resources.cpu_cores,
                    "mem": d.spec.resources.memory_mb,
                    "sto": d.spec.resources.storage_mb,
                    "android": d.spec.android_version,
                    "labels": as_json(d.spec.labels),
                    "adb_host": d.adb_host,
                    "adb_port": d.adb_port,
                    "created_at": d.created_at,
                }
                for d in devices
            ],
        )

    async def get(self, device_id: uuid.UUID) -> Device | None:
        row = await self._row(
            sql(f"SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.id = :id"), {"id": device_id}
        )
        return device_from_row(row) if row else None

    async def candidates(self, requirements: DeviceRequirements) -> CandidateDevices:
        clauses = ["d.status = 'available'", "n.status = 'ready'"]
        params: dict[str, Any] = {}
        if requirements.min_cpu:
            clauses.append("d.cpu_cores >= :min_cpu")
            params["min_cpu"] = requirements.min_cpu
        if requirements.min_memory_mb:
            clauses.append("d.memory_mb >= :min_mem")
            params["min_mem"] = requirements.min_memory_mb
        if requirements.min_storage_mb:
            clauses.append("d.storage_mb >= :min_sto")
            params["min_sto"] = requirements.min_storage_mb
        if requirements.android_version:
            clauses.append("d.android_version = :android")
            params["android"] = requirements.android_version
        if requirements.labels:
            clauses.append("(n.labels || d.labels) @> CAST(:labels AS jsonb)")
            params["labels"] = as_json(requirements.labels)
        if not requirements.tolerations:
            clauses.append("n.taints = '[]'::jsonb")
        rows = await self._rows(
            sql(
                "SELECT d.id, d.cpu_cores, d.memory_mb, d.storage_mb, d.node_id, n.max_devices,"
                " n.taints FROM devices d JOIN nodes n ON n.id = d.node_id WHERE "
                + " AND ".join(clauses)
            ),
            params,
        )
        if requirements.tolerations:
            rows = [
                r
                for r in rows
                if all(Taint(**t).is_tolerated_by(requirements.tolerations) for t in r["taints"])
            ]
        return _candidates(rows)

    async def claim_first(self, ranked_ids: Sequence[Any], now: datetime) -> Device | None:
        for start in range(0, len(ranked_ids), CLAIM_CHUNK):
            row = await self._row(
                sql(
                    "UPDATE devices d SET status = 'allocated', status_changed_at = :now"
                    " WHERE d.id = (SELECT c.id FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY"
                    " AS r(id, pos) JOIN devices c ON c.id = r.id WHERE c.status = 'available'"
                    " ORDER BY r.pos LIMIT 1 FOR UPDATE OF c SKIP LOCKED)"
                    f" RETURNING {DEVICE_COLUMNS}"
                ),
                {"ids": list(ranked_ids[start : start + CLAIM_CHUNK]), "now": now},
            )
            if row is not None:
                return device_from_row(row)
        return None

    async def transition(
        self,
        device_ids: Sequence[uuid.UUID],
        source: DeviceStatus,
        target: DeviceStatus,
        now: datetime,
    ) -> list[Device]:
        rows = await self._rows(
            sql(
                "UPDATE devices d SET status = :target, status_changed_at = :now"
                " WHERE d.id = ANY(CAST(:ids AS uuid[])) AND d.status = :source"
                f" RETURNING {DEVICE_COLUMNS}"
            ),
            {"ids": list(device_ids), "source": source.value, "target": target.value, "now": now},
        )
        return [device_from_row(r) for r in rows]

    async def list_available(
        self, labels: dict[str, str], limit: int, cursor: str | None
    ) -> Page[Device]:
        where = "d.status = 'available' AND n.status = 'ready'"
        params: dict[str, Any] = {"limit": limit + 1}
        if labels:
            where += " AND (n.labels || d.labels) @> CAST(:labels AS jsonb)"
            params["labels"] = as_json(labels)
        total_row = await self._row(
            sql(
                f"SELECT count(*) AS n FROM devices d JOIN nodes n ON n.id = d.node_id WHERE {where}"
            ),
            params,
        )
        if cursor:
            name, device_id = decode_cursor(cursor, 2)
            where += " AND (d.name, d.id) > (:c_name, CAST(:c_id AS uuid))"
            params.update(c_name=name, c_id=device_id)
        rows = await self._rows(
            sql(
                f"SELECT {DEVICE_COLUMNS} FROM devices d JOIN nodes n ON n.id = d.node_id"
                f" WHERE {where} ORDER BY d.name, d.id LIMIT :limit"
            ),
            params,
        )
        items = [device_from_row(r) for r in rows[:limit]]
        next_cursor = encode_cursor(items[-1].name, items[-1].id) if len(rows) > limit else None
        return Page(items, int(total_row["n"]) if total_row else 0, next_cursor)

    async def in_status(
        self, node_ids: Sequence[uuid.UUID], statuses: Sequence[DeviceStatus]
    ) -> list[Device]:
        rows = await self._rows(
            sql(
                f"SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.node_id = ANY(CAST(:nodes AS uuid[]))"
                " AND d.status = ANY(CAST(:statuses AS text[]))"
            ),
            {"nodes": list(node_ids), "statuses": [s.value for s in statuses]},
        )
        return [device_from_row(r) for r in rows]

    async def next_adb_port(self, host: str) -> int:
        """The first free ADB port on ``host``; serialized per host for this transaction."""
        await self._rows(sql("SELECT pg_advisory_xact_lock(hashtext(:host))"), {"host": host})
        row = await self._row(
            sql("SELECT max(adb_port) AS port FROM devices WHERE adb_host = :host"),
            {"host": host},
        )
        return ADB_BASE_PORT if row is None or row["port"] is None else int(row["port"]) + 1


def _candidates(rows: Sequence[RowMapping]) -> CandidateDevices:
    """Candidate arrays, with each node's occupancy estimated from its free matching devices."""
    if not rows:
        return CandidateDevices.from_rows([])
    node_ids = [r["node_id"] for r in rows]
    _, inverse, counts = np.unique(
        np.asarray([str(n) for n in node_ids]), return_inverse=True, return_counts=True
    )
    max_devices = np.asarray([r["max_devices"] for r in rows], dtype=np.float64)
    occupancy = 1.0 - counts[inverse] / np.maximum(max_devices, 1.0)
    return CandidateDevices.from_rows(
        [
            (r["id"], r["cpu_cores"], r["memory_mb"], r["storage_mb"], float(o))
            for r, o in zip(rows, occupancy, strict=True)
        ]
    )
