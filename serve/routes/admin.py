"""Admin routes: tenants and API tokens."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from scheduler.domain.identity import Role
from scheduler.domain.resources import Resources
from scheduler.services import tenancy
from serve.deps import PrincipalDep, ServicesDep
from serve.idempotency import IdempotentRoute
from serve.schemas import TenantIn, TenantOut, TenantUpdateIn, TokenIn, TokenOut

router = APIRouter(route_class=IdempotentRoute, prefix="/scheduler/admin", tags=["admin"])


@router.post("/tenants", status_code=201, response_model=TenantOut)
async def create_tenant(
    body: TenantIn, principal: PrincipalDep, services: ServicesDep
) -> TenantOut:
    tenant = await tenancy.create_tenant(
        services.uow(), principal, body.to_command(), now=services.clock()
    )
    return TenantOut.of(tenant)


@router.get("/tenants", response_model=list[TenantOut])
async def list_tenants(principal: PrincipalDep, services: ServicesDep) -> list[TenantOut]:
    return [TenantOut.of(t) for t in await tenancy.list_tenants(services.uow(), principal)]


@router.get("/tenants/{tenant_id}", response_model=TenantOut)
async def get_tenant(
    tenant_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep
) -> TenantOut:
    return TenantOut.of(await tenancy.get_tenant(services.uow(), principal, tenant_id))


@router.patch("/tenants/{tenant_id}", response_model=TenantOut)
async def update_tenant(
    tenant_id: uuid.UUID, body: TenantUpdateIn, principal: PrincipalDep, services: ServicesDep
) -> TenantOut:
    """Set the tier (it decides queue priority) and/or the quota; a raised quota wakes the
    queue."""
    quota = body.quota
    tenant = await tenancy.update_tenant(
        services.uow(),
        principal,
        tenant_id,
        tier=body.tier,
        max_devices=quota.maxDevices if quota else None,
        quota=Resources(quota.cpuCores, quota.memoryMB, quota.storageMB) if quota else None,
        max_extensions=body.extensionPolicy.maxExtensions if body.extensionPolicy else None,
        max_lease_minutes=body.extensionPolicy.maxTotalMinutes if body.extensionPolicy else None,
        now=services.clock(),
    )
    services.queue.wake()
    return TenantOut.of(tenant)


@router.post("/tokens", status_code=201, response_model=TokenOut)
async def create_token(body: TokenIn, principal: PrincipalDep, services: ServicesDep) -> TokenOut:
    token = await tenancy.create_token(
        services.uow(),
        principal,
        body.tenantId,
        body.userId,
        Role(body.role),
        now=services.clock(),
    )
    return TokenOut(token=token, tenantId=body.tenantId, userId=body.userId, role=body.role)
