"""Inputs and results of the use cases, as plain values (no HTTP, no SQL)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from scheduler.domain.allocations import Allocation, AllocationStatus
from scheduler.domain.fleet import Device
from scheduler.domain.resources import DeviceRequirements, Resources, Taint

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AllocateDevice:
    user_id: str | None
    duration_minutes: int
    requirements: DeviceRequirements

    def fingerprint(self) -> str:
        """A stable hash of the request, to tell a retry from a different request."""
        body = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PendingLease:
    """A lease decided in everything but its device."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str
    allocated_at: datetime
    expires_at: datetime
    idempotency_key: str | None

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

    def to_record(self) -> dict[str, Any]:
        return {"allocation_id": str(self.allocation.id), "device_id": str(self.device.id)}


@dataclass(frozen=True, slots=True)
class Release:
    """The outcome of ending a lease."""

    allocation_id: uuid.UUID
    device_id: uuid.UUID
    node_id: uuid.UUID
    duration_seconds: int
    usage_record_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class RegisterNode:
    name: str
    resources: Resources
    max_devices: int
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    host: str | None = None


@dataclass(frozen=True, slots=True)
class AddDevices:
    count: int
    resources: Resources
    android_version: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CreateTenant:
    name: str
    max_devices: int
    quota: Resources
    tier: str = "standard"


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
