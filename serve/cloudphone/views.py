"""What the console reads, rendered from the native answers: nodes with the original's
statuses and units, cluster stats in percent and whole GB, tasks, strategies, placements and
usage trends. Optional fields are left out rather than sent as ``null`` (the console's schemas
refuse ``null``)."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Generic, Literal, TypeVar

from fastapi.responses import Response
from pydantic import BaseModel

from placement.host_choice import HostChoice
from placement.problem import Strategy
from scheduler.domain.tasks import Task
from scheduler.domain.usage_stats import ClusterStats, HourBucket
from scheduler.services.device_health import Relocation
from serve.schemas import NodeOut
from serve.schemas.base import Out
from serve.schemas.strategies import StrategyDefinitionOut

ConsoleNodeStatus = Literal["active", "inactive", "maintenance", "draining"]

#: A native node status as the console knows it: ready takes work (active); cordoned,
#: drained, offline and removed take none (inactive).
NODE_STATUS: dict[str, ConsoleNodeStatus] = {
    "ready": "active",
    "cordoned": "inactive",
    "draining": "draining",
    "drained": "inactive",
    "maintenance": "maintenance",
    "offline": "inactive",
    "removed": "inactive",
}

T = TypeVar("T")


def render(body: BaseModel, status_code: int = 200) -> Response:
    """``body`` as JSON without its unset optional fields (the envelope goes around it)."""
    return Response(
        body.model_dump_json(exclude_none=True),
        status_code=status_code,
        media_type="application/json",
    )


def whole_gb(megabytes: float) -> int:
    return round(megabytes / 1024)


def percent(share: float) -> float:
    return round(share * 100, 2)


class ConsolePage(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    pageSize: int
    totalPages: int

    @classmethod
    def of(cls, items: list[T], total: int, page: int, page_size: int) -> ConsolePage[T]:
        return cls(
            items=items,
            total=total,
            page=page,
            pageSize=page_size,
            totalPages=math.ceil(total / page_size),
        )

    @classmethod
    def cut(cls, every: list[T], page: int, page_size: int) -> ConsolePage[T]:
        """Page ``page`` (from 1) of the whole list ``every``."""
        start = (page - 1) * page_size
        return cls.of(every[start : start + page_size], len(every), page, page_size)


class NodeResources(Out):
    cpu: float
    memory: int
    storage: int
    maxDevices: int


class NodeUsage(Out):
    cpu: float
    memory: int
    storage: int
    deviceCount: int


class ConsoleNode(Out):
    """A node, memory and storage in MB; ``lastHeartbeat`` is its registration until its
    first heartbeat, ``port`` 0 when it was registered without one."""

    id: str
    name: str
    host: str
    port: int
    region: str | None = None
    zone: str | None = None
    status: ConsoleNodeStatus
    capacity: NodeResources
    usage: NodeUsage
    labels: dict[str, str]
    lastHeartbeat: datetime
    createdAt: datetime

    @classmethod
    def of(cls, n: NodeOut) -> ConsoleNode:
        return cls(
            id=str(n.id),
            name=n.name,
            host=n.host,
            port=n.port or 0,
            region=n.region,
            zone=n.zone,
            status=NODE_STATUS[n.status],
            capacity=NodeResources(
                cpu=n.capacity.cpuCores,
                memory=n.capacity.memoryMB,
                storage=n.capacity.storageMB,
                maxDevices=n.capacity.maxDevices,
            ),
            usage=NodeUsage(
                cpu=n.usage.cpuCores,
                memory=n.usage.memoryMB,
                storage=n.usage.storageMB,
                deviceCount=n.usage.devices,
            ),
            labels=n.labels,
            lastHeartbeat=n.lastHeartbeatAt or n.createdAt,
            createdAt=n.createdAt,
        )


class NodeCounts(Out):
    total: int
    online: int


class ClusterCapacity(Out):
    cpuCores: float
    memoryMB: int
    storageGB: int
    maxDevices: int


class ClusterUsage(Out):
    cpuCores: float
    memoryMB: int
    storageGB: int
    devices: int


class ClusterUtilization(Out):
    """Percent of the capacity the active leases use."""

    cpu: float
    memory: float
    storage: float
    devices: float


class ConsoleClusterStats(Out):
    nodes: NodeCounts
    capacity: ClusterCapacity
    usage: ClusterUsage
    utilization: ClusterUtilization

    @classmethod
    def of(cls, s: ClusterStats) -> ConsoleClusterStats:
        return cls(
            nodes=NodeCounts(total=s.nodes["total"], online=s.nodes["online"]),
            capacity=ClusterCapacity(
                cpuCores=s.capacity.cpu_cores,
                memoryMB=s.capacity.memory_mb,
                storageGB=whole_gb(s.capacity.storage_mb),
                maxDevices=s.max_devices,
            ),
            usage=ClusterUsage(
                cpuCores=s.usage.cpu_cores,
                memoryMB=s.usage.memory_mb,
                storageGB=whole_gb(s.usage.storage_mb),
                devices=s.leased_devices,
            ),
            utilization=ClusterUtilization(
                **{k: percent(s.utilization[k]) for k in ("cpu", "memory", "storage", "devices")}
            ),
        )


class ConsoleTask(Out):
    """A queue entry (``pending``, or ``failed`` when it never got a device) or a lease;
    ``deviceId`` and ``nodeId`` are empty strings while it waits. ``source`` and ``state``
    say which record it is and its own status."""

    id: str
    deviceId: str
    nodeId: str
    status: str
    priority: float
    createdAt: datetime
    startedAt: datetime | None = None
    source: str
    state: str

    @classmethod
    def of(cls, t: Task) -> ConsoleTask:
        return cls(
            id=str(t.id),
            deviceId=str(t.device_id or ""),
            nodeId=str(t.node_id or ""),
            status=t.status.value,
            priority=t.priority,
            createdAt=t.created_at,
            startedAt=t.started_at,
            source=t.source.value,
            state=t.state,
        )


class ConsoleStrategy(Out):
    id: str
    name: str
    type: str
    description: str | None = None
    config: dict[str, int] | None = None
    isActive: bool
    createdAt: datetime
    updatedAt: datetime

    @classmethod
    def of(cls, s: StrategyDefinitionOut) -> ConsoleStrategy:
        return cls(
            id=str(s.id),
            name=s.name,
            type=s.type,
            description=s.description or None,
            config=s.config or None,
            isActive=s.isActive,
            createdAt=s.createdAt,
            updatedAt=s.updatedAt,
        )


class TrendPoint(Out):
    """One hour: leases that held a device in it, their device-seconds, the share of the
    devices' time leased (percent) and the most leases at once."""

    timestamp: datetime
    leases: int
    deviceSeconds: float
    utilization: float
    peakConcurrent: int

    @classmethod
    def of(cls, b: HourBucket) -> TrendPoint:
        return cls(
            timestamp=b.hour,
            leases=b.leases,
            deviceSeconds=b.device_seconds,
            utilization=percent(b.utilization),
            peakConcurrent=b.peak_concurrent,
        )


class ConsoleUsageTrend(Out):
    nodeId: str | None = None
    startDate: datetime
    endDate: datetime
    hours: int
    points: list[TrendPoint]


class ConsolePlacement(Out):
    """The original's ``{nodeId, nodeName, reason, score}``; ``score`` in [0, 1000]."""

    nodeId: str
    nodeName: str
    reason: str
    score: int
    strategy: str

    @classmethod
    def of(cls, choice: HostChoice, strategy: Strategy) -> ConsolePlacement:
        return cls(
            nodeId=str(choice.host.node_id),
            nodeName=choice.host.name,
            reason=choice.reason,
            score=choice.score,
            strategy=strategy.value,
        )


class ConsoleRescheduled(Out):
    deviceId: str
    allocationId: str
    #: The device the lease now holds.
    movedTo: str

    @classmethod
    def of(cls, device_id: uuid.UUID, r: Relocation) -> ConsoleRescheduled:
        return cls(
            deviceId=str(device_id), allocationId=str(r.allocation_id), movedTo=str(r.moved_to)
        )


class ConsoleActiveStrategy(Out):
    id: str
    name: str
    type: str
    description: str | None = None

    @classmethod
    def of(cls, s: StrategyDefinitionOut) -> ConsoleActiveStrategy:
        return cls(id=str(s.id), name=s.name, type=s.type, description=s.description or None)
