"""The console's request bodies, and the native commands they stand for. Unknown fields are
ignored, as the original's validation stripped them (the console sends whole forms); the
fields read are validated as strictly as the native API's."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from scheduler.domain import limits
from scheduler.domain.resources import Resources, Toleration
from scheduler.services.commands import RegisterNode, SetNodeSchedulable
from scheduler.services.host_placement import HostPlacementQuery
from scheduler.services.node_operations import DrainNode, SetMaintenance, UpdateNode
from scheduler.services.strategy_catalogue import CreateStrategy, UpdateStrategy
from serve.cloudphone.views import ConsoleNodeStatus
from serve.schemas.base import Labels, LabelsField, Name
from serve.schemas.strategies import StrategyDefinitionOut, StrategyType, Weights

#: Label keys a node's region and zone are kept under (``statistics.region_of`` reads them).
REGION_LABEL, ZONE_LABEL = "region", "zone"


class ConsoleBody(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class ConsoleCapacityIn(ConsoleBody):
    cpu: float = Field(gt=0, le=limits.MAX_DEVICE_CPU_CORES)
    #: MB, as the console sends them.
    memory: int = Field(gt=0, le=limits.MAX_DEVICE_MEMORY_MB)
    storage: int = Field(gt=0, le=limits.MAX_DEVICE_STORAGE_MB)
    maxDevices: int = Field(gt=0, le=limits.MAX_NODE_DEVICES)


def _place(labels: dict[str, str], region: str | None, zone: str | None) -> dict[str, str]:
    placed = dict(labels)
    if region:
        placed[REGION_LABEL] = region
    if zone:
        placed[ZONE_LABEL] = zone
    return placed


class ConsoleNodeIn(ConsoleBody):
    name: str = Name
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)
    region: str | None = Field(default=None, max_length=limits.MAX_LABEL_VALUE)
    zone: str | None = Field(default=None, max_length=limits.MAX_LABEL_VALUE)
    capacity: ConsoleCapacityIn
    labels: Labels = LabelsField

    def to_command(self) -> RegisterNode:
        c = self.capacity
        return RegisterNode(
            self.name,
            Resources(c.cpu, c.memory, c.storage),
            c.maxDevices,
            _place(self.labels, self.region, self.zone),
            host=self.host,
            port=self.port,
        )


class ConsoleNodeUpdateIn(ConsoleBody):
    name: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )
    labels: Labels | None = Field(default=None, max_length=limits.MAX_LABELS)
    status: ConsoleNodeStatus | None = None

    def to_update(self, node_id: uuid.UUID) -> UpdateNode | None:
        if self.name is None and self.labels is None:
            return None
        labels = dict(self.labels) if self.labels is not None else None
        return UpdateNode(node_id, name=self.name, labels=labels)


def status_command(
    node_id: uuid.UUID, current: str, wanted: ConsoleNodeStatus
) -> SetMaintenance | SetNodeSchedulable | DrainNode | None:
    """The native command that takes a node from its ``current`` (native) status to the
    console's ``wanted`` one; ``None`` when it is there already. A change the node's state
    forbids is refused by the command itself (409 ``node_state_conflict``)."""
    if wanted == "maintenance":
        return None if current == "maintenance" else SetMaintenance(node_id, True)
    if wanted == "draining":
        return None if current == "draining" else DrainNode(node_id)
    if wanted == "inactive":
        return (
            None
            if current in ("cordoned", "drained", "offline")
            else SetNodeSchedulable(node_id, False)
        )
    if current == "maintenance":
        return SetMaintenance(node_id, False)
    return None if current == "ready" else SetNodeSchedulable(node_id, True)


def _weights(config: Weights | None) -> dict[str, int]:
    return {str(term): points for term, points in (config or {}).items()}


class ConsoleStrategyIn(ConsoleBody):
    name: str = Name
    type: StrategyType
    description: str | None = Field(default=None, max_length=1000)
    config: Weights | None = Field(default=None, max_length=3)

    def to_command(self) -> CreateStrategy:
        return CreateStrategy(self.name, self.type, self.description or "", _weights(self.config))


class ConsoleStrategyPatchIn(ConsoleBody):
    """A partial strategy: what is absent stays as it is."""

    name: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )
    type: StrategyType | None = None
    description: str | None = Field(default=None, max_length=1000)
    config: Weights | None = Field(default=None, max_length=3)

    def over(self, current: StrategyDefinitionOut) -> UpdateStrategy:
        return UpdateStrategy(
            current.id,
            self.name or current.name,
            self.type or current.type,
            current.description if self.description is None else self.description,
            current.config if self.config is None else _weights(self.config),
        )


class ConsoleTolerationIn(ConsoleBody):
    key: str = Field(min_length=1, max_length=128)
    value: str | None = Field(default=None, max_length=128)


class ConsoleScheduleIn(ConsoleBody):
    """Where a device would go: the console names a device (``deviceId``, its spec is read)
    and maybe a node; the original's API gives the spec itself."""

    deviceId: uuid.UUID | None = None
    nodeId: uuid.UUID | None = None
    preferredNode: uuid.UUID | None = None
    cpuCores: float | None = Field(default=None, gt=0, le=limits.MAX_DEVICE_CPU_CORES)
    memoryMB: int | None = Field(default=None, gt=0, le=limits.MAX_DEVICE_MEMORY_MB)
    storageMB: int = Field(default=0, ge=0, le=limits.MAX_DEVICE_STORAGE_MB)
    labels: Labels = LabelsField
    tolerations: list[ConsoleTolerationIn] = Field(default_factory=list, max_length=64)
    strategy: Literal["binpack", "spread", "balanced", "least_loaded"] | None = None

    def to_query(self, spec: Resources | None) -> HostPlacementQuery:
        """The placement question, for ``spec`` (the named device's) or the body's own."""
        if spec is None:
            assert self.cpuCores is not None and self.memoryMB is not None
            spec = Resources(self.cpuCores, self.memoryMB, self.storageMB)
        return HostPlacementQuery(
            spec,
            dict(self.labels),
            tuple(Toleration(t.key, t.value) for t in self.tolerations),
            self.nodeId or self.preferredNode,
            self.strategy,
        )
