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
from scheduler.domain.resources import ZERO
from scheduler.domain.tenants import Tenant
from scheduler.services.command_path import Unit
from scheduler.services.commands import CreateTenant, CreateToken, TokenIssued, UpdateTenant
from scheduler.services.ports import UnitOfWork, UnitOfWorkFactory

SYSTEM_TENANT = "system"
ADMIN_USER = "admin"


async def create_tenant(command: CreateTenant, unit: Unit) -> Tenant:
    """Raises:
    Forbidden: the caller is not an admin.
    AlreadyExists: a tenant with that name exists.
    """
    require_admin(unit.principal)
    tenant = Tenant(
        id=uuid.uuid4(),
        name=command.name,
        tier=command.tier,
        max_devices=command.max_devices,
        quota=command.quota,
        used_devices=0,
        used=ZERO,
        created_at=unit.now,
    )
    await unit.uow.tenants.add(tenant)
    unit.emit(events.TenantCreated(occurred_at=unit.now, tenant_id=tenant.id, name=tenant.name))
    return tenant


async def update_tenant(command: UpdateTenant, unit: Unit) -> Tenant:
    """Change a tenant's tier or quota (the queue's priority and admission follow: the queue
    drains once it commits).

    Raises:
        Forbidden: the caller is not an admin.
        TenantNotFound: no such tenant.
        QuotaExceeded: the new quota is below what the tenant holds now.
    """
    require_admin(unit.principal)
    tenant = await unit.uow.tenants.update(
        command.tenant_id,
        command.tier,
        command.max_devices,
        command.quota,
        command.max_extensions,
        command.max_lease_minutes,
    )
    if tenant is None:
        raise TenantNotFound()
    unit.emit(
        events.TenantUpdated(
            occurred_at=unit.now,
            tenant_id=tenant.id,
            tier=tenant.tier,
            max_devices=tenant.max_devices,
        )
    )
    unit.effects.wake(tenant=tenant.id)
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


async def create_token(command: CreateToken, unit: Unit) -> TokenIssued:
    """Issue a bearer token; only its hash is stored, so its secret is in this answer only.

    Raises:
        Forbidden: the caller is not an admin.
        TenantNotFound: no such tenant.
    """
    require_admin(unit.principal)
    if await unit.uow.tenants.get(command.tenant_id) is None:
        raise TenantNotFound()
    secret = new_token()
    issued = TokenIssued(
        uuid.uuid4(), command.tenant_id, command.user_id, command.role, unit.now, secret
    )
    await unit.uow.tokens.add(
        issued.id, hash_token(secret), command.tenant_id, command.user_id, command.role, unit.now
    )
    unit.emit(
        events.TokenIssued(
            occurred_at=unit.now,
            token_id=issued.id,
            tenant_id=issued.tenant_id,
            user_id=issued.user_id,
            role=issued.role.value,
        )
    )
    return issued


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
            await uow.tokens.add(
                uuid.uuid4(), hash_token(token), tenant.id, ADMIN_USER, Role.ADMIN, now
            )
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
