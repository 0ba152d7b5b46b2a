"""Admin routes: tenants and API tokens."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response

from scheduler.services import tenancy
from scheduler.services.commands import RevokeToken
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.replies import reply
from serve.routes.links import answer_links, by_id, link_to
from serve.schemas import (
    TenantIn,
    TenantOut,
    TenantUpdateIn,
    TokenIn,
    TokenInfoOut,
    TokenList,
    TokenOut,
)

router = APIRouter(prefix="/scheduler/admin", tags=["admin"])


TENANT = by_id("id", "tenant_id")


@router.post(
    "/tenants",
    status_code=201,
    response_model=TenantOut,
    responses=answer_links(
        201,
        GetTenant=link_to("GET", "/scheduler/admin/tenants/{tenant_id}", parameters=TENANT),
        UpdateTenant=link_to("PATCH", "/scheduler/admin/tenants/{tenant_id}", parameters=TENANT),
        CreateToken=link_to(
            "POST", "/scheduler/admin/tokens", body={"tenantId": "$response.body#/id"}
        ),
    ),
)
async def create_tenant(
    body: TenantIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    handled = await services.commands.handle(body.to_command(), principal, key)
    return reply(handled, TenantOut.of(handled.result), 201)


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
    tenant_id: uuid.UUID,
    body: TenantUpdateIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """Set the tier (it decides queue priority), the quota and/or the extension policy; a
    raised quota wakes the queue."""
    handled = await services.commands.handle(body.to_command(tenant_id), principal, key)
    return reply(handled, TenantOut.of(handled.result))


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenOut,
    responses=answer_links(
        201,
        RevokeToken=link_to(
            "DELETE", "/scheduler/admin/tokens/{token_id}", parameters=by_id("id", "token_id")
        ),
    ),
)
async def create_token(
    body: TokenIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    """Issue a token. Its secret (``token``) is in this answer only: a retry with the same
    ``Idempotency-Key`` answers the token's id and metadata with ``token: null``."""
    handled = await services.commands.handle(body.to_command(), principal, key)
    return reply(handled, TokenOut.of(handled.result), 201)


@router.get("/tokens", response_model=TokenList)
async def list_tokens(
    principal: PrincipalDep, services: ServicesDep, tenantId: uuid.UUID | None = None
) -> TokenList:
    """Tokens (newest first, at most 1,000), never their secrets."""
    tokens = await tenancy.list_tokens(services.uow(), principal, tenantId)
    return TokenList([TokenInfoOut.of(t) for t in tokens])


@router.delete("/tokens/{token_id}", response_model=TokenInfoOut)
async def revoke_token(
    token_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    """Revoke a token; every replica refuses it within a second. Revoking twice is harmless
    (the first revocation time is kept)."""
    handled = await services.commands.handle(RevokeToken(token_id), principal, key)
    return reply(handled, TokenInfoOut.of(handled.result))
