"""Bodies of tenants, tokens and the scheduler's settings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from scheduler.domain import limits
from scheduler.domain.resources import Resources
from scheduler.domain.tenants import Tenant
from scheduler.services.commands import (
    CreateTenant,
)
from serve.schemas.base import (
    Body,
    Name,
    Out,
    UserId,
)


class QuotaIn(Body):
    maxDevices: int = Field(ge=0, le=limits.MAX_FLEET_DEVICES)
    cpuCores: float = Field(ge=0, le=limits.MAX_FLEET_CPU_CORES)
    memoryMB: int = Field(ge=0, le=limits.MAX_FLEET_MEMORY_MB)
    storageMB: int = Field(ge=0, le=limits.MAX_FLEET_STORAGE_MB)


class TenantIn(Body):
    name: str = Name
    tier: str = Field(default="standard", min_length=1, max_length=32)
    quota: QuotaIn

    def to_command(self) -> CreateTenant:
        q = self.quota
        return CreateTenant(
            self.name, q.maxDevices, Resources(q.cpuCores, q.memoryMB, q.storageMB), self.tier
        )


class QuotaOut(Out):
    maxDevices: int
    cpuCores: float
    memoryMB: int
    storageMB: int


class TenantOut(Out):
    id: uuid.UUID
    name: str
    tier: str
    quota: QuotaOut
    usage: QuotaOut
    extensionPolicy: dict[str, int]
    createdAt: datetime

    @classmethod
    def of(cls, t: Tenant) -> TenantOut:
        return cls(
            id=t.id,
            name=t.name,
            tier=t.tier,
            createdAt=t.created_at,
            extensionPolicy={
                "maxExtensions": t.max_extensions,
                "maxTotalMinutes": t.max_lease_minutes,
            },
            quota=QuotaOut(
                maxDevices=t.max_devices,
                cpuCores=t.quota.cpu_cores,
                memoryMB=t.quota.memory_mb,
                storageMB=t.quota.storage_mb,
            ),
            usage=QuotaOut(
                maxDevices=t.used_devices,
                cpuCores=t.used.cpu_cores,
                memoryMB=t.used.memory_mb,
                storageMB=t.used.storage_mb,
            ),
        )


class TokenIn(Body):
    tenantId: uuid.UUID
    userId: str = UserId
    role: Literal["admin", "service", "user"]


class TokenOut(Out):
    token: str
    tenantId: uuid.UUID
    userId: str
    role: str


class StrategyIn(Body):
    strategy: str = Field(min_length=1, max_length=32)


class ExtensionPolicyIn(Body):
    maxExtensions: int = Field(ge=0, le=1000)
    maxTotalMinutes: int = Field(ge=1, le=525_600)


class TenantUpdateIn(Body):
    tier: str | None = Field(default=None, min_length=1, max_length=32)
    quota: QuotaIn | None = None
    extensionPolicy: ExtensionPolicyIn | None = None
