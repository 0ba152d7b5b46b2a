"""Inputs and results of the use cases, as plain values (no HTTP, no SQL)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Generic, TypeVar

from scheduler.domain.allocations import Allocation, AllocationStatus
from scheduler.domain.extensions import ExtensionInfo
from scheduler.domain.fleet import Device
from scheduler.domain.identity import Role
from scheduler.domain.rate_limits import RateLimit
from scheduler.domain.resources import DeviceRequirements, Resources, Taint, Toleration

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AllocateDevice:
    """Lease the best-fitting device now; with ``queue_if_unavailable``, wait in the queue
    when none is free (one command: a retry gets the same grant or the same entry)."""

    user_id: str | None
    duration_minutes: int
    requirements: DeviceRequirements
    queue_if_unavailable: bool = False
    max_wait_minutes: int = 30


@dataclass(frozen=True, slots=True)
class ReleaseAllocation:
    """End a lease, named by its id or by its device's."""

    allocation_id: uuid.UUID | None
    device_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class ExpireDueAllocations:
    """End every lease whose time has come, now (an admin's sweep)."""


@dataclass(frozen=True, slots=True)
class ExtendAllocation:
    allocation_id: uuid.UUID
    additional_minutes: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class PendingLease:
    """A lease decided in everything but its device."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str
    allocated_at: datetime
    expires_at: datetime

    def on(self, device: Device) -> Allocation:
        """The lease once ``device`` was claimed for it."""
        return Allocation(
            id=self.id,
            device_id=device.id,
            tenant_id=self.tenant_id,
            user_id=self.user_id,
            status=AllocationStatus.ACTIVE,
            allocated_at=self.allocated_at,
            expires_at=self.expires_at,
            resources=device.spec.resources,
        )


@dataclass(frozen=True, slots=True)
class Grant:
    """A granted lease as the caller sees it."""

    allocation: Allocation
    device: Device


@dataclass(frozen=True, slots=True)
class Release:
    """The outcome of ending a lease."""

    allocation_id: uuid.UUID
    device_id: uuid.UUID
    node_id: uuid.UUID
    duration_seconds: int
    usage_record_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Extended:
    """A lease after its extension, with what further extensions remain."""

    allocation: Allocation
    info: ExtensionInfo


@dataclass(frozen=True, slots=True)
class Count:
    """How many things a command did."""

    count: int


@dataclass(frozen=True, slots=True)
class RegisterNode:
    name: str
    resources: Resources
    max_devices: int
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    host: str | None = None
    port: int | None = None
    cpu_allocation_rate: float = 1.0
    memory_allocation_rate: float = 1.0


@dataclass(frozen=True, slots=True)
class SetNodeSchedulable:
    """Cordon (``False``: no new leases on the node) or uncordon a node."""

    node_id: uuid.UUID
    schedulable: bool


@dataclass(frozen=True, slots=True)
class AddDevices:
    node_id: uuid.UUID
    count: int
    resources: Resources
    android_version: str
    labels: dict[str, str] = field(default_factory=dict)
    #: Planned while the node was ready (provisioning): refused if it no longer is.
    only_if_ready: bool = False


@dataclass(frozen=True, slots=True)
class AddedDevices:
    devices: list[Device]


@dataclass(frozen=True, slots=True)
class ProvisionDevices:
    """Create ``count`` devices of a spec on the hosts where they fit best."""

    count: int
    resources: Resources
    android_version: str
    #: Labels the hosts must carry, and host taints the devices tolerate.
    host_labels: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    preferred_node_id: uuid.UUID | None = None
    strategy: str | None = None
    dry_run: bool = False
    #: All or nothing; else as many as fit.
    atomic: bool = True


@dataclass(frozen=True, slots=True)
class PlannedHost:
    node_id: uuid.UUID
    node_name: str
    count: int
    score: int  # of the first device placed there
    reason: str


@dataclass(frozen=True, slots=True)
class ProvisionedDevices:
    requested: int
    plan: list[PlannedHost]
    devices: list[Device]  # empty for a dry run


@dataclass(frozen=True, slots=True)
class CreateTenant:
    name: str
    max_devices: int
    quota: Resources
    tier: str = "standard"


@dataclass(frozen=True, slots=True)
class UpdateTenant:
    """Change a tenant's tier, quota or extension policy (``None``: unchanged)."""

    tenant_id: uuid.UUID
    tier: str | None = None
    max_devices: int | None = None
    quota: Resources | None = None
    max_extensions: int | None = None
    max_lease_minutes: int | None = None
    rate_limit: RateLimit | None = None


@dataclass(frozen=True, slots=True)
class CreateToken:
    tenant_id: uuid.UUID
    user_id: str
    role: Role
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RevokeToken:
    token_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class TokenIssued:
    """A new bearer token: ``token`` is its secret, in the first answer only (only its hash
    is stored, and a replay answers without it)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str
    role: Role
    created_at: datetime
    token: str | None = None
    expires_at: datetime | None = None

    def without_secrets(self) -> TokenIssued:
        return replace(self, token=None)


@dataclass(frozen=True, slots=True)
class SetStrategy:
    strategy: str


@dataclass(frozen=True, slots=True)
class StrategySet:
    strategy: str


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class AllocationFilter:
    user_id: str | None = None
    status: str | None = None
    limit: int = 50
    cursor: str | None = None
