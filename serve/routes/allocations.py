"""Allocation routes: listing, one allocation, statistics, extensions and the admin expiry
sweep."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from scheduler.domain.allocations import AllocationStatus
from scheduler.services import allocations, extensions
from scheduler.services.commands import AllocationFilter, ExpireDueAllocations, ExtendAllocation
from scheduler.services.ports import lease_changed
from scheduler.services.waiting import MAX_WAIT_SECONDS, read_until
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.replies import reply
from serve.schemas import (
    AllocationOut,
    AllocationPage,
    CountOut,
    ExtendedOut,
    ExtendIn,
    ExtendInfoOut,
)

router = APIRouter(prefix="/scheduler/allocations", tags=["allocations"])

Status = Literal["active", "released", "expired", "revoked"]


@router.get("", response_model=AllocationPage)
async def list_allocations(
    principal: PrincipalDep,
    services: ServicesDep,
    userId: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> AllocationPage:
    page = await allocations.list_allocations(
        services.uow(), principal, AllocationFilter(userId, status, limit, cursor)
    )
    return AllocationPage(
        items=[AllocationOut.of(a) for a in page.items],
        total=page.total,
        nextCursor=page.next_cursor,
    )


@router.get("/stats")
async def stats(principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    raw = await allocations.allocation_stats(services.uow(), principal, now=services.clock())
    return {
        "total": raw["total"],
        "active": raw["active"],
        "released": raw["released"],
        "expired": raw["expired"],
        "revoked": raw["revoked"],
        "expiringSoon": raw["expiring_soon"],
        "users": raw["users"],
        "averageDurationSeconds": raw["avg_duration_seconds"],
    }


@router.post("/release-expired", response_model=CountOut)
async def release_expired(
    principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    """Run the expiry sweep now (admin). Honours ``Idempotency-Key``."""
    handled = await services.commands.handle(ExpireDueAllocations(), principal, key)
    return reply(handled, CountOut(count=handled.result.count))


@router.put("/{allocation_id}/extend", response_model=ExtendedOut)
async def extend(
    allocation_id: uuid.UUID,
    body: ExtendIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """Push the lease's expiry back within its tenant's limits. Honours ``Idempotency-Key``."""
    command = ExtendAllocation(allocation_id, body.additionalMinutes, body.reason)
    handled = await services.commands.handle(command, principal, key)
    return reply(handled, ExtendedOut.of(handled.result))


@router.get("/{allocation_id}/extend-info", response_model=ExtendInfoOut)
async def extend_info(
    allocation_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep
) -> ExtendInfoOut:
    info = await extensions.get_extension_info(
        services.uow(), principal, allocation_id, now=services.clock()
    )
    return ExtendInfoOut.of(info)


@router.get("/{allocation_id}", response_model=AllocationOut)
async def get_allocation(
    allocation_id: uuid.UUID,
    principal: PrincipalDep,
    services: ServicesDep,
    waitSeconds: Annotated[
        float,
        Query(ge=0, le=MAX_WAIT_SECONDS, description="wait up to this long for the lease to end"),
    ] = 0,
) -> Response:
    lease = await read_until(
        services.changes,
        (lease_changed(allocation_id),),
        lambda: allocations.get_allocation(services.uow(), principal, allocation_id),
        lambda a: a.status is not AllocationStatus.ACTIVE,
        seconds=waitSeconds,
    )
    return Response(AllocationOut.of(lease).model_dump_json(), media_type="application/json")
