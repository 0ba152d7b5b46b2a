"""Bodies of the fleet statistics."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from scheduler.domain.events import EventRecord
from scheduler.domain.resources import Resources
from scheduler.domain.usage_stats import ClusterStats, HourBucket, NodeTotals
from scheduler.services.statistics import GroupSummary
from serve.schemas.base import Out


class UsageOut(Out):
    cpuCores: float
    memoryMB: int
    storageMB: int
    devices: int

    @classmethod
    def of(cls, resources: Resources, devices: int) -> UsageOut:
        return cls(
            cpuCores=resources.cpu_cores,
            memoryMB=resources.memory_mb,
            storageMB=resources.storage_mb,
            devices=devices,
        )


class NodeCountsOut(Out):
    total: int
    online: int
    offline: int
    maintenance: int
    draining: int
    ready: int
    cordoned: int


class ClusterCapacityOut(Out):
    cpuCores: float
    memoryMB: int
    storageMB: int
    maxDevices: int


class UtilizationOut(Out):
    cpu: float
    memory: float
    storage: float
    devices: float


class ClusterStatsOut(Out):
    """``online`` counts ready and cordoned nodes (``cordoned`` says how many of them take
    no new leases); usage is what active leases hold; utilization is usage over capacity
    (devices: leased over every device not retired)."""

    nodes: NodeCountsOut
    capacity: ClusterCapacityOut
    usage: UsageOut
    utilization: UtilizationOut
    devices: dict[str, int]

    @classmethod
    def of(cls, s: ClusterStats) -> ClusterStatsOut:
        return cls(
            nodes=NodeCountsOut(**s.nodes),
            capacity=ClusterCapacityOut(
                cpuCores=s.capacity.cpu_cores,
                memoryMB=s.capacity.memory_mb,
                storageMB=s.capacity.storage_mb,
                maxDevices=s.max_devices,
            ),
            usage=UsageOut.of(s.usage, s.leased_devices),
            utilization=UtilizationOut(**s.utilization),
            devices=s.devices,
        )


class HourOut(Out):
    hour: datetime
    leases: int
    deviceSeconds: float
    utilization: float
    peakConcurrent: int

    @classmethod
    def of(cls, b: HourBucket) -> HourOut:
        return cls(
            hour=b.hour,
            leases=b.leases,
            deviceSeconds=b.device_seconds,
            utilization=b.utilization,
            peakConcurrent=b.peak_concurrent,
        )


class UsageTrendOut(Out):
    hours: int
    buckets: list[HourOut]


class GroupSummaryOut(Out):
    nodes: int
    maxDevices: int
    leasedDevices: int

    @classmethod
    def of(cls, g: GroupSummary) -> GroupSummaryOut:
        return cls(nodes=g.nodes, maxDevices=g.max_devices, leasedDevices=g.leased_devices)


class NodesSummaryOut(Out):
    byStatus: dict[str, GroupSummaryOut]
    byRegion: dict[str, GroupSummaryOut]


def node_usage(totals: NodeTotals | None) -> UsageOut:
    if totals is None:
        return UsageOut(cpuCores=0, memoryMB=0, storageMB=0, devices=0)
    return UsageOut.of(totals.leased, totals.leased_devices)


class EventOut(Out):
    seq: int
    id: uuid.UUID
    type: str
    aggregateId: str
    occurredAt: datetime
    payload: dict[str, Any]

    @classmethod
    def of(cls, seq: int, e: EventRecord) -> EventOut:
        return cls(
            seq=seq,
            id=e.id,
            type=e.type,
            aggregateId=e.aggregate_id,
            occurredAt=e.occurred_at,
            payload=e.payload,
        )
