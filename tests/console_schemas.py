"""The platform's admin console as a client: the schemas it reads PhoneFleet's answers with,
written from the contract table in ``shared/notes/platform-contract.md`` (its Zod schemas:
numbers are numbers, ids strings, optional fields absent rather than ``null``).

Strict models: a string where a number is read, an integer field holding 1.5, a ``null`` in an
optional field or a missing field fails validation, as it fails the console."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict

T = TypeVar("T")


def _iso(value: str) -> str:
    datetime.fromisoformat(value)
    return value


IsoTime = Annotated[str, AfterValidator(_iso)]
#: An optional field: absent, or of its type (never null).
ABSENT: Any = "<absent>"


class Console(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class Envelope(Console):
    success: Literal[True]
    data: Any
    timestamp: IsoTime
    path: str
    requestId: str = ABSENT


class ErrorEnvelope(Console):
    success: Literal[False]
    statusCode: int
    message: str
    errorCode: str


class ListPage(Console, Generic[T]):
    """What the console unwraps into a table: ``{items, total, page, pageSize}``."""

    items: list[T]
    total: int
    page: int
    pageSize: int
    totalPages: int = ABSENT


class NodeCapacity(Console):
    cpu: float
    memory: float
    storage: float
    maxDevices: int


class NodeUsage(Console):
    cpu: float
    memory: float
    storage: float
    deviceCount: int


class Node(Console):
    id: str
    name: str
    host: str
    port: int
    region: str = ABSENT
    zone: str = ABSENT
    status: Literal["active", "inactive", "maintenance", "draining"]
    capacity: NodeCapacity
    usage: NodeUsage
    lastHeartbeat: IsoTime
    createdAt: IsoTime


class StatsNodes(Console):
    total: int
    online: int


class StatsCapacity(Console):
    cpuCores: float
    memoryMB: float
    storageGB: int
    maxDevices: int


class StatsUsage(Console):
    cpuCores: float
    memoryMB: float
    storageGB: int
    devices: int


class StatsUtilization(Console):
    cpu: float
    memory: float
    storage: float


class ClusterStats(Console):
    nodes: StatsNodes
    capacity: StatsCapacity
    usage: StatsUsage
    utilization: StatsUtilization


class Strategy(Console):
    id: str
    name: str
    type: str
    description: str = ABSENT
    config: dict[str, Any] = ABSENT
    isActive: bool
    createdAt: IsoTime


class ActiveStrategy(Console):
    id: str
    name: str
    description: str = ABSENT


class Task(Console):
    id: str
    deviceId: str
    nodeId: str
    status: Literal["pending", "running", "completed", "failed"]
    priority: float
    createdAt: IsoTime
    startedAt: IsoTime = ABSENT


class Placement(Console):
    nodeId: str
    nodeName: str
    reason: str
    score: float


class Rescheduled(Console):
    deviceId: str
    allocationId: str
    movedTo: str


class TrendPoint(Console):
    timestamp: IsoTime
    leases: int
    deviceSeconds: float
    utilization: float
    peakConcurrent: int


class UsageTrend(Console):
    startDate: IsoTime
    endDate: IsoTime
    hours: int
    points: list[TrendPoint]
