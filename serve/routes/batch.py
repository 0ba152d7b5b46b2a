"""Batch routes: allocate (one placement plan; each on its own, or all or none), release,
extend and look up many allocations. The state-changing ones honour ``Idempotency-Key``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from scheduler.services import batch
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.errors import problem
from serve.replies import REPLAYED_HEADER, reply
from serve.schemas import (
    BatchAllocateIn,
    BatchAllocateOut,
    BatchExtendIn,
    BatchExtendOut,
    BatchQueryIn,
    BatchQueryOut,
    BatchReleaseIn,
    BatchReleaseOut,
    Problem,
)

router = APIRouter(prefix="/scheduler/allocations/batch", tags=["batch"])


@router.post(
    "",
    response_model=BatchAllocateOut,
    responses={409: {"model": Problem, "description": "atomic: batch_not_placeable"}},
)
async def allocate_batch(
    body: BatchAllocateIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    """Lease a device for each request, placed by one plan over the batch. Each item is
    answered on its own (200); with ``atomic`` all are granted or none (409
    ``batch_not_placeable`` with every item's result)."""
    handled = await services.commands.handle(body.to_command(), principal, key)
    out = BatchAllocateOut.of(handled.result.items)
    if handled.result.refused:
        refused = batch.BatchNotPlaceable()
        headers = {REPLAYED_HEADER: "true"} if handled.replayed else None
        return problem(409, refused.code, refused.detail, out.model_dump(mode="json"), headers)
    return reply(handled, out)


@router.post("/release", response_model=BatchReleaseOut)
async def release_batch(
    body: BatchReleaseIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    """End each listed lease the caller may end; the devices are reset."""
    handled = await services.commands.handle(body.to_command(), principal, key)
    return reply(handled, BatchReleaseOut.of(body.allocationIds, handled.result.items))


@router.post("/extend", response_model=BatchExtendOut)
async def extend_batch(
    body: BatchExtendIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    """Extend each listed lease by ``additionalMinutes``, within its tenant's limits."""
    handled = await services.commands.handle(body.to_command(), principal, key)
    return reply(handled, BatchExtendOut.of(body.allocationIds, handled.result.items))


@router.post("/query", response_model=BatchQueryOut)
async def query_batch(
    body: BatchQueryIn, principal: PrincipalDep, services: ServicesDep
) -> BatchQueryOut:
    """Each user's allocations the caller may see, newest first (``activeOnly``: active
    ones only); at most 100 per user, ``total`` and ``nextCursor`` tell the rest. A read:
    safe to retry as it is."""
    outcomes = await batch.query_batch(
        services.uow(), principal, body.userIds, active_only=body.activeOnly
    )
    return BatchQueryOut.of(body.userIds, outcomes)
