"""Use cases of tenants and API tokens, and turning a bearer token into a principal."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import datetime

from scheduler.domain import events
from scheduler.domain.errors import InvalidRequest, TenantNotFound, TokenNotFound, Unauthenticated
from scheduler.domain.identity import (
    Credential,
    Principal,
    Role,
    TokenInfo,
    hash_token,
    new_token,
    require_admin,
)
from scheduler.domain.resources import ZERO
from scheduler.domain.tenants import Tenant
from scheduler.services.command_path import Unit
from scheduler.services.commands import (
    CreateTenant,
    CreateToken,
    RevokeToken,
    TokenIssued,
    UpdateTenant,
)
from scheduler.services.ports import TOKENS_REVOKED, ChangeFeed, UnitOfWork, UnitOfWorkFactory

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
        command.rate_limit,
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
        InvalidRequest: an expiry without a time zone, or not in the future.
    """
    require_admin(unit.principal)
    expires_at = command.expires_at
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= unit.now):
        raise InvalidRequest("expiresAt must be a future instant with a time zone")
    if await unit.uow.tenants.get(command.tenant_id) is None:
        raise TenantNotFound()
    secret = new_token()
    issued = TokenIssued(
        uuid.uuid4(),
        command.tenant_id,
        command.user_id,
        command.role,
        unit.now,
        secret,
        expires_at,
    )
    await unit.uow.tokens.add(
        issued.id,
        hash_token(secret),
        command.tenant_id,
        command.user_id,
        command.role,
        unit.now,
        expires_at=expires_at,
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


async def revoke_token(command: RevokeToken, unit: Unit) -> TokenInfo:
    """Revoke a token: every replica refuses it within a second (the revocation is
    announced on commit and drops the replicas' cached credentials).

    Raises:
        Forbidden: the caller is not an admin.
        TokenNotFound: no such token (bootstrap admin tokens are rotated, not revoked).
    """
    require_admin(unit.principal)
    revoked = await unit.uow.tokens.revoke(command.token_id, unit.now)
    if revoked is None:
        raise TokenNotFound()
    unit.emit(
        events.TokenRevoked(
            occurred_at=unit.now,
            token_id=revoked.id,
            tenant_id=revoked.tenant_id,
            user_id=revoked.user_id,
        )
    )
    return revoked


async def list_tokens(
    uow: UnitOfWork, principal: Principal, tenant_id: uuid.UUID | None
) -> list[TokenInfo]:
    """Raises:
    Forbidden: the caller is not an admin.
    """
    require_admin(principal)
    async with uow:
        return await uow.tokens.list(tenant_id)


async def ensure_admin_token(uow: UnitOfWork, token: str, *, now: datetime) -> None:
    """Make ``token`` the valid admin token of the system tenant (idempotent, for
    bootstrap; a bootstrap token revoked by an earlier rotation is valid again); any other
    bootstrap admin token (a rotated one) is revoked."""
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
        digest = hash_token(token)
        valid = await uow.tokens.credential_for(digest) is not None
        if not valid and not await uow.tokens.reinstate_bootstrap(digest):
            await uow.tokens.add(
                uuid.uuid4(), digest, tenant.id, ADMIN_USER, Role.ADMIN, now, bootstrap=True
            )
        await uow.tokens.revoke_bootstrap_except(digest, now)
        await uow.commit()


class TokenAuthenticator:
    """Resolves bearer tokens to credentials, remembering answers for a few seconds so the
    request path does not pay a database round trip per call. A revocation announced on the
    change feed drops every remembered answer at once; while the feed is not heard, answers
    are kept one second at most, so a revoked or expired token is refused within a second."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        ttl_seconds: float,
        changes: ChangeFeed,
        clock: Callable[[], datetime],
    ) -> None:
        self._uow_factory = uow_factory
        self._ttl = ttl_seconds
        self._changes = changes
        self._clock = clock
        self._cache: dict[bytes, tuple[float, Credential]] = {}
        changes.on(TOKENS_REVOKED, self._cache.clear)

    async def authenticate(self, token: str | None) -> Credential:
        """Raises:
        Unauthenticated: the token is missing, unknown, revoked or expired.
        InfrastructureError: the database is down (503, not 401).
        """
        if not token:
            raise Unauthenticated("an Authorization: Bearer token is required")
        digest = hash_token(token)
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            credential = cached[1]
        else:
            async with self._uow_factory() as uow:
                found = await uow.tokens.credential_for(digest)
            if found is None:
                raise Unauthenticated("the bearer token is not valid")
            credential = found
            if len(self._cache) > 10_000:
                self._cache.clear()
            ttl = self._ttl if self._changes.listening else min(self._ttl, 1.0)
            self._cache[digest] = (time.monotonic() + ttl, credential)
        if credential.expired(self._clock()):
            raise Unauthenticated("the bearer token has expired")
        return credential
