"""Use cases of tenants and API tokens, and turning a bearer token into a principal."""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import datetime

from scheduler.domain import events
from scheduler.domain.errors import TenantNotFound, Unauthenticated
from scheduler.domain.identity import (
    Principal,
    Role,
    hash_token,
    new_token,
    require_admin,
)
from scheduler.domain.resources import ZERO, Resources
from scheduler.domain.tenants import Tenant
from scheduler.services.commands import CreateTenant
from scheduler.services.ports import UnitOfWork, UnitOfWorkFactory

SYSTEM_TENANT = "system"
ADMIN_USER = "admin"


async def create_tenant(
    uow: UnitOfWork, principal: Principal, command: CreateTenant, *, now: datetime
) -> Tenant:
    """Raises:
    Forbidden: the caller is not an admin.
    AlreadyExists: a tenant with that name exists.
    """
    require_admin(principal)
    tenant = Tenant(
        id=uuid.uuid4(),
        name=command.name,
        tier=command.tier,
        max_devices=command.max_devices,
        quota=command.quota,
        used_devices=0,
        used=ZERO,
        created_at=now,
    )
    async with uow:
        await uow.tenants.add(tenant)
        await uow.outbox.add(
            [
                events.Event(
                    events.TENANT_CREATED,
                    str(tenant.id),
                    {"tenantId": str(tenant.id), "name": tenant.name},
                    now,
                )
            ]
        )
        await uow.commit()
    return tenant


async def update_tenant(
    uow: UnitOfWork,
    principal: Principal,
    tenant_id: uuid.UUID,
    *,
    tier: str | None,
    max_devices: int | None,
    quota: Resources | None,
    now: datetime,
    max_extensions: int | None = None,
    max_lease_minutes: int | None = None,
) -> Tenant:
    """Change a tenant's tier or quota (the queue's priority and admission follow).

    Raises:
        Forbidden: the caller is not an admin.
        TenantNotFound: no such tenant.
        QuotaExceeded: the new quota is below what the tenant holds now.
    """
    require_admin(principal)
    async with uow:
        tenant = await uow.tenants.update(
            tenant_id, tier, max_devices, quota, max_extensions, max_lease_minutes
        )
        if tenant is None:
            raise TenantNotFound()
        await uow.outbox.add(
            [
                events.Event(
                    events.TENANT_UPDATED,
                    str(tenant.id),
                    {
                        "tenantId": str(tenant.id),
                        "tier": tenant.tier,
                        "maxDevices": tenant.max_devices,
                    },
                    now,
                )
            ]
        )
        await uow.commit()
    return tenant


async def get_tenant(uow: UnitOfWork, principal: Principal, tenant_id: uuid.UUID) -> Tenant:
    """Raises:
    Forbidden: a non-admin asked for another tenant.
    TenantNotFound: no such tenant.
    """
    if not principal.is_admin and principal.tenant_id != tenant_id:
        raise TenantNotFound()
    async with uow:
        tenant = await uow.tenants.get(tenant_id)
    if tenant is None:
        raise TenantNotFound()
    return tenant


async def find_tenant(uow: UnitOfWork, name_or_id: str) -> Tenant:
    """Raises:
    TenantNotFound: no tenant has that name or id.
    """
    async with uow:
        tenant = await uow.tenants.get_by_name(name_or_id)
        if tenant is None:
            with contextlib.suppress(ValueError):
                tenant = await uow.tenants.get(uuid.UUID(name_or_id))
    if tenant is None:
        raise TenantNotFound(f"no tenant named {name_or_id!r}")
    return tenant


async def list_tenants(uow: UnitOfWork, principal: Principal) -> list[Tenant]:
    require_admin(principal)
    async with uow:
        return await uow.tenants.list()


async def create_token(
    uow: UnitOfWork,
    principal: Principal,
    tenant_id: uuid.UUID,
    user_id: str,
    role: Role,
    *,
    now: datetime,
) -> str:
    """Issue a bearer token; only its hash is stored, so it is shown once.

    Raises:
        Forbidden: the caller is not an admin.
        TenantNotFound: no such tenant.
    """
    require_admin(principal)
    token = new_token()
    async with uow:
        if await uow.tenants.get(tenant_id) is None:
            raise TenantNotFound()
        await uow.tokens.add(hash_token(token), tenant_id, user_id, role, now)
        await uow.commit()
    return token


async def ensure_admin_token(uow: UnitOfWork, token: str, *, now: datetime) -> None:
    """Make ``token`` a valid admin token of the system tenant (idempotent, for bootstrap)."""
    async with uow:
        tenant = await uow.tenants.get_by_name(SYSTEM_TENANT)
        if tenant is None:
            tenant = Tenant(
                id=uuid.uuid4(),
                name=SYSTEM_TENANT,
                tier="system",
                max_devices=0,
                quota=ZERO,
                used_devices=0,
                used=ZERO,
                created_at=now,
            )
            await uow.tenants.add(tenant)
        if await uow.tokens.principal_for(hash_token(token)) is None:
            await uow.tokens.add(hash_token(token), tenant.id, ADMIN_USER, Role.ADMIN, now)
        await uow.commit()


class TokenAuthenticator:
    """Resolves bearer tokens to principals, remembering answers for a few seconds so the
    request path does not pay a database round trip per call."""

    def __init__(self, uow_factory: UnitOfWorkFactory, ttl_seconds: float) -> None:
        self._uow_factory = uow_factory
        self._ttl = ttl_seconds
        self._cache: dict[bytes, tuple[float, Principal]] = {}

    async def authenticate(self, token: str | None) -> Principal:
        """Raises:
        Unauthenticated: the token is missing, unknown or revoked.
        """
        if not token:
            raise Unauthenticated("an Authorization: Bearer token is required")
        digest = hash_token(token)
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self._uow_factory() as uow:
            principal = await uow.tokens.principal_for(digest)
        if principal is None:
            raise Unauthenticated("the bearer token is not valid")
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (time.monotonic() + self._ttl, principal)
        return principal
