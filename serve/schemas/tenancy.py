"""Bodies of tenants, tokens and the scheduler's settings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field, RootModel

from scheduler.domain import limits
from scheduler.domain.identity import Role, TokenInfo
from scheduler.domain.rate_limits import RateLimit
from scheduler.domain.resources import Resources
from scheduler.domain.tenants import Tenant
from scheduler.services.commands import CreateTenant, CreateToken, TokenIssued, UpdateTenant
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
    rateLimit: RateLimitOut | None = Field(
        default=None, description="none: the default of PHONEFLEET_RATE_LIMIT_*"
    )
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
            rateLimit=RateLimitOut(
                requestsPerSecond=t.rate_limit.requests_per_second, burst=t.rate_limit.burst
            )
            if t.rate_limit
            else None,
        )


class TokenIn(Body):
    tenantId: uuid.UUID
    userId: str = UserId
    role: Literal["admin", "service", "user"]
    expiresAt: datetime | None = Field(default=None, description="none: never expires")

    def to_command(self) -> CreateToken:
        return CreateToken(self.tenantId, self.userId, Role(self.role), self.expiresAt)


class TokenOut(Out):
    id: uuid.UUID
    token: str | None
    tenantId: uuid.UUID
    userId: str
    role: str
    createdAt: datetime
    expiresAt: datetime | None = None

    @classmethod
    def of(cls, t: TokenIssued) -> TokenOut:
        return cls(
            id=t.id,
            token=t.token,
            tenantId=t.tenant_id,
            userId=t.user_id,
            role=t.role.value,
            createdAt=t.created_at,
            expiresAt=t.expires_at,
        )


class TokenInfoOut(Out):
    """A token as admins list it: never its secret."""

    id: uuid.UUID
    tenantId: uuid.UUID
    userId: str
    role: str
    createdAt: datetime
    expiresAt: datetime | None
    revokedAt: datetime | None

    @classmethod
    def of(cls, t: TokenInfo) -> TokenInfoOut:
        return cls(
            id=t.id,
            tenantId=t.tenant_id,
            userId=t.user_id,
            role=t.role.value,
            createdAt=t.created_at,
            expiresAt=t.expires_at,
            revokedAt=t.revoked_at,
        )


class TokenList(RootModel[list[TokenInfoOut]]):
    """A plain JSON list of tokens."""


class StrategyIn(Body):
    strategy: str = Field(min_length=1, max_length=32)


class StrategyOut(Out):
    strategy: str


class ExtensionPolicyIn(Body):
    maxExtensions: int = Field(ge=0, le=1000)
    maxTotalMinutes: int = Field(ge=1, le=525_600)


class RateLimitIn(Body):
    requestsPerSecond: float = Field(gt=0, le=100_000)
    burst: int = Field(ge=1, le=1_000_000)


class RateLimitOut(Out):
    requestsPerSecond: float
    burst: int


class TenantUpdateIn(Body):
    tier: str | None = Field(default=None, min_length=1, max_length=32)
    quota: QuotaIn | None = None
    extensionPolicy: ExtensionPolicyIn | None = None
    rateLimit: RateLimitIn | None = None

    def to_command(self, tenant_id: uuid.UUID) -> UpdateTenant:
        q, policy = self.quota, self.extensionPolicy
        return UpdateTenant(
            tenant_id,
            tier=self.tier,
            max_devices=q.maxDevices if q else None,
            quota=Resources(q.cpuCores, q.memoryMB, q.storageMB) if q else None,
            max_extensions=policy.maxExtensions if policy else None,
            max_lease_minutes=policy.maxTotalMinutes if policy else None,
            rate_limit=RateLimit(self.rateLimit.requestsPerSecond, self.rateLimit.burst)
            if self.rateLimit
            else None,
        )
