"""The read of candidate devices for a placement: which devices match a request (SQL
clauses, taints), and the candidate classes, ranked in SQL, that a placement chooses from."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from placement.greedy import PACKING_WEIGHT, SPREADING
from placement.model import CandidateDevices
from scheduler.adapters.sql_base import Row
from scheduler.domain.fleet import Device, DeviceSpec, DeviceStatus
from scheduler.domain.resources import DeviceRequirements, Resources, Taint


def matching_clauses(requirements: DeviceRequirements) -> tuple[list[str], dict[str, Any]]:
    """WHERE clauses for devices on ready nodes that match ``requirements``, whatever their
    status (taints are checked here only when the request tolerates none)."""
    clauses = ["n.status = 'ready'"]
    params: dict[str, Any] = {}
    if requirements.min_cpu:
        clauses.append("d.cpu_cores >= %(min_cpu)s")
        params["min_cpu"] = requirements.min_cpu
    if requirements.min_memory_mb:
        clauses.append("d.memory_mb >= %(min_mem)s")
        params["min_mem"] = requirements.min_memory_mb
    if requirements.min_storage_mb:
        clauses.append("d.storage_mb >= %(min_sto)s")
        params["min_sto"] = requirements.min_storage_mb
    if requirements.android_version:
        clauses.append("d.android_version = %(android)s")
        params["android"] = requirements.android_version
    if requirements.labels:
        clauses.append("(n.labels || d.labels) @> %(labels)s")
        params["labels"] = Jsonb(requirements.labels)
    if not requirements.tolerations:
        clauses.append("n.taints = '[]'::jsonb")
    return clauses, params


def tolerated(rows: list[Row], requirements: DeviceRequirements) -> list[Row]:
    if not requirements.tolerations:
        return rows
    return [
        r
        for r in rows
        if all(Taint(**t).is_tolerated_by(requirements.tolerations) for t in r["taints"])
    ]


#: Backfill: a lease may take a device booked later only if it ends before the booking's
#: pre-warm starts (``%(lease_end)s`` is the lease's expiry).
NOT_BOOKED_BEFORE_LEASE_END = (
    "NOT EXISTS (SELECT 1 FROM reservations r WHERE r.device_id = d.id"
    " AND r.status = 'pending' AND r.prewarm_at < %(lease_end)s)"
)

#: Devices per class offered to one claim: enough that concurrent requests rarely collide.
CLASS_SAMPLE = 32
#: The columns of a candidate class's first devices, as arrays (in ``Device`` order).
DETAIL_ARRAYS = {
    "name": "names",
    "android_version": "android_versions",
    "labels": "label_sets",
    "adb_host": "adb_hosts",
    "adb_port": "adb_ports",
    "created_at": "created_ats",
}


#: Candidate classes one placement reads at most (when the request tolerates no taint): the
#: best by the score ``placement.greedy.best_fit_scores`` computes, pre-ranked in SQL so
#: that a fleet of 10,000 hosts is not 10,000 rows per request. Requests that tolerate
#: taints read every class (taints are matched in Python).
RANKED_CLASSES = 32


def candidate_query(
    requirements: DeviceRequirements, tenant_id: uuid.UUID | None
) -> tuple[str, dict[str, Any]]:
    """The read of available devices on ready nodes that match ``requirements``, one row per
    class of devices alike for placement (same node and size) with its free count and its
    node's occupancy, and a random sample of ids (the first ``%(detailed)s`` with every
    column of their devices). Classes the tenant's quota admits come first (without a
    tenant, none is preferred), then by the best
    fit score (``SPREADING`` strategies: node occupancy first), ``RANKED_CLASSES`` of them."""
    clauses, params = matching_clauses(requirements)
    minimum = requirements.minimum
    params.update(
        tenant=tenant_id,
        rank_cpu=minimum.cpu_cores,
        rank_mem=minimum.memory_mb,
        rank_sto=minimum.storage_mb,
        classes=None if requirements.tolerations else RANKED_CLASSES,
        spreading=list(SPREADING),
    )
    taints = ", n.taints" if requirements.tolerations else ""
    detail = " ".join(
        f"array_agg(x.{column}) FILTER (WHERE x.pick <= %(detailed)s) AS {alias},"
        for column, alias in DETAIL_ARRAYS.items()
    )
    query = f"""
WITH {_classes(clauses, taints)}, scored AS (
    SELECT c.*,
        1.0 - (sum(c.free) OVER (PARTITION BY c.node_id))::float8
            / greatest(c.max_devices, 1) AS occupancy,
        (c.cpu_cores - %(rank_cpu)s) / greatest(max(c.cpu_cores) OVER (), 1e-9)
        + (c.memory_mb - %(rank_mem)s) / greatest(max(c.memory_mb) OVER (), 1e-9)::float8
        + (c.storage_mb - %(rank_sto)s) / greatest(max(c.storage_mb) OVER (), 1e-9)::float8
            AS waste,
        coalesce((SELECT c.cpu_cores <= t.max_cpu_cores - t.used_cpu_cores + 1e-6
            AND c.memory_mb <= t.max_memory_mb - t.used_memory_mb
            AND c.storage_mb <= t.max_storage_mb - t.used_storage_mb
            FROM tenants t WHERE t.id = %(tenant)s), false) AS admitted
    FROM classes c
), best AS (
    SELECT * FROM scored ORDER BY admitted DESC,
        CASE WHEN (SELECT strategy FROM scheduler_config) = ANY(%(spreading)s)
            THEN occupancy * 10.0 + waste / 10.0
            ELSE waste - {PACKING_WEIGHT} * occupancy END
    LIMIT %(classes)s
)
SELECT b.*, sample.* FROM best b CROSS JOIN LATERAL (
    SELECT array_agg(x.id ORDER BY x.pick) AS ids, {detail.rstrip(",")}
    FROM (SELECT d.*, row_number() OVER (ORDER BY random()) AS pick
        FROM devices d JOIN nodes n ON n.id = d.node_id
        WHERE d.node_id = b.node_id AND d.status = 'available' AND d.cpu_cores = b.cpu_cores
            AND d.memory_mb = b.memory_mb AND d.storage_mb = b.storage_mb
            AND {" AND ".join(clauses)}
        ORDER BY random() LIMIT {CLASS_SAMPLE}) x
) sample
"""
    return query, params


def _classes(clauses: list[str], taints: str) -> str:
    """The ``classes`` CTE: free matching devices per node and size. When no clause mixes
    the device's and the node's columns (labels do), the devices are grouped first and the
    few groups joined to their nodes: half the time of joining every device at 100,000."""
    device = [c for c in clauses if c.startswith("d.")]
    node = [c for c in clauses if c.startswith("n.")]
    if len(device) + len(node) < len(clauses):
        return f"""classes AS (
    SELECT d.node_id, d.cpu_cores, d.memory_mb, d.storage_mb, n.max_devices{taints},
        count(*) AS free
    FROM devices d JOIN nodes n ON n.id = d.node_id
    WHERE d.status = 'available' AND {" AND ".join(clauses)}
    GROUP BY d.node_id, n.max_devices, d.cpu_cores, d.memory_mb, d.storage_mb{taints}
)"""
    return f"""grouped AS (
    SELECT d.node_id, d.cpu_cores, d.memory_mb, d.storage_mb, count(*) AS free
    FROM devices d WHERE {" AND ".join(["d.status = 'available'", *device])}
    GROUP BY d.node_id, d.cpu_cores, d.memory_mb, d.storage_mb
), classes AS (
    SELECT g.node_id, g.cpu_cores, g.memory_mb, g.storage_mb, n.max_devices{taints}, g.free
    FROM grouped g JOIN nodes n ON n.id = g.node_id
    WHERE {" AND ".join(node) or "TRUE"}
)"""


def detailed_devices(rows: Sequence[Row]) -> dict[uuid.UUID, Device]:
    """The available devices a candidate read gave every column of, by id."""
    return {
        device_id: Device(
            id=device_id,
            node_id=r["node_id"],
            name=name,
            status=DeviceStatus.AVAILABLE,
            spec=DeviceSpec(Resources(r["cpu_cores"], r["memory_mb"], r["storage_mb"]), *spec),
            adb_host=host,
            adb_port=port,
            created_at=created_at,
        )
        for r in rows
        for device_id, name, *spec, host, port, created_at in zip(
            r["ids"],
            *(r[alias] or () for alias in DETAIL_ARRAYS.values()),
            strict=False,
        )
    }


def class_candidates(rows: Sequence[Row]) -> CandidateDevices:
    """Candidate classes (their ``ids`` are tuples of device ids), with each node's occupancy
    as the read gave it, or estimated from the rows' free matching devices."""
    free_on_node: Counter[uuid.UUID] = Counter()
    for r in rows:
        free_on_node[r["node_id"]] += r["free"]
    return CandidateDevices.from_rows(
        [
            (
                tuple(r["ids"]),
                r["cpu_cores"],
                r["memory_mb"],
                r["storage_mb"],
                r.get("occupancy", 1.0 - free_on_node[r["node_id"]] / max(r["max_devices"], 1)),
            )
            for r in rows
        ]
    )
