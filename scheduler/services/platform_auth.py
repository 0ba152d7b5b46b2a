"""Callers of the platform, beside PhoneFleet's own tokens: a JWT the platform signed, or the
user its gateway names. Each becomes a principal of the PhoneFleet tenant named by its
``tenantId`` (created on first sight with the configured quota, else refused: 403
``tenant_not_found``), an admin when its roles say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from scheduler.domain.errors import AlreadyExists, TenantNotFound, Unauthenticated
from scheduler.domain.identity import Credential, Principal
from scheduler.domain.platform_identity import PlatformUser, user_from_claims, user_from_gateway
from scheduler.domain.resources import Resources
from scheduler.domain.tenants import Tenant
from scheduler.services.command_path import run_unit
from scheduler.services.commands import CreateTenant
from scheduler.services.ports import UnitOfWorkFactory
from scheduler.services.tenancy import TokenAuthenticator, create_tenant

#: How long a platform tenant's id and rate limit are remembered (a tenant is never renamed).
TENANT_CACHE_SECONDS = 30.0


class ClaimsVerifier(Protocol):
    def recognises(self, token: str) -> bool:
        """Whether ``token`` is one of its kind (not a PhoneFleet token)."""
        ...

    def claims(self, token: str) -> dict[str, Any]:
        """The verified claims. Raises ``Unauthenticated``."""
        ...


def default_tenant_of(quota: Mapping[str, float] | None) -> Callable[[str], CreateTenant] | None:
    """``PHONEFLEET_JWT_DEFAULT_QUOTA`` (``POST /scheduler/admin/tenants``'s quota object) as
    the command that creates a platform tenant of a given name."""
    if quota is None:
        return None
    resources = Resources(
        float(quota.get("cpuCores", 0)),
        int(quota.get("memoryMB", 0)),
        int(quota.get("storageMB", 0)),
    )
    max_devices = int(quota.get("maxDevices", 0))
    return lambda name: CreateTenant(name, max_devices, resources)


class PlatformAuthenticator:
    """Resolves a bearer token (a platform JWT when a verifier is configured and the token is
    one, else a PhoneFleet token) or the gateway's headers into a credential."""

    def __init__(
        self,
        tokens: TokenAuthenticator,
        uow_factory: UnitOfWorkFactory,
        clock: Callable[[], datetime],
        *,
        verifier: ClaimsVerifier | None = None,
        admin_roles: frozenset[str] = frozenset(),
        new_tenant: Callable[[str], CreateTenant] | None = None,
    ) -> None:
        self.tokens = tokens
        self._uow_factory = uow_factory
        self._clock = clock
        self._verifier = verifier
        self._admin_roles = admin_roles
        self._new_tenant = new_tenant
        self._tenants: dict[str, tuple[float, Tenant]] = {}

    async def authenticate(self, token: str | None) -> Credential:
        """Raises:
        Unauthenticated: the token is missing, unknown, revoked, expired or does not verify.
        TenantNotFound: a platform caller's tenant is unknown and none is created.
        InfrastructureError: the database is down (503, not 401).
        """
        if token and self._verifier is not None and self._verifier.recognises(token):
            return await self._credential(user_from_claims(self._verifier.claims(token)))
        return await self.tokens.authenticate(token)

    async def authenticate_gateway(self, headers: Mapping[str, str]) -> Credential:
        """The user the gateway's headers name (the caller proved it is the gateway).

        Raises:
            Unauthenticated: the headers do not name a user and a tenant.
            TenantNotFound: as ``authenticate``.
        """
        return await self._credential(user_from_gateway(headers))

    async def _credential(self, user: PlatformUser) -> Credential:
        if user.expires_at is not None and user.expires_at <= self._clock():
            raise Unauthenticated("the JWT has expired")
        tenant = await self._tenant(user.tenant)
        principal = Principal(tenant.id, user.user_id, user.role(self._admin_roles))
        return Credential(principal, user.token_id, user.expires_at, tenant.rate_limit)

    async def _tenant(self, name: str) -> Tenant:
        cached = self._tenants.get(name)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self._uow_factory() as uow:
            tenant = await uow.tenants.get_by_name(name)
        if tenant is None:
            tenant = await self._create(name)
        if len(self._tenants) > 10_000:
            self._tenants.clear()
        self._tenants[name] = (time.monotonic() + TENANT_CACHE_SECONDS, tenant)
        return tenant

    async def _create(self, name: str) -> Tenant:
        if self._new_tenant is None:
            raise TenantNotFound(f"the platform's tenant {name!r} has no PhoneFleet tenant")
        command = self._new_tenant(name)
        try:
            return await run_unit(
                self._uow_factory, lambda unit: create_tenant(command, unit), now=self._clock()
            )
        except AlreadyExists:  # created meanwhile by another request: read it
            async with self._uow_factory() as uow:
                tenant = await uow.tenants.get_by_name(name)
            if tenant is None:
                raise
            return tenant
