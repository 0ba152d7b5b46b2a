"""Batch routes: allocate (one placement plan; each on its own, or all or none), release,
extend and look up many allocations. Every route honours ``Idempotency-Key``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from scheduler.services import batch
from scheduler.services.housekeeping import request_resets
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.errors import problem
from serve.idempotency import idempotent, json_response
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
    body: BatchAllocateIn,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """Lease a device for each request, placed by one plan over the batch. Each item is
    answered on its own (200); with ``atomic`` all are granted or none (409
    ``batch_not_placeable`` with every item's result)."""

    async def run() -> Response:
        outcomes = await batch.allocate_batch(
            services.uow,
            principal,
            body.to_command(),
            now=services.clock(),
            solver=services.solver,
        )
        out = BatchAllocateOut.of(outcomes)
        if body.atomic and out.failed:
            refused = batch.BatchNotPlaceable()
            return problem(409, refused.code, refused.detail, out.model_dump(mode="json"))
        return json_response(out)

    return await idempotent(request, services, principal, key, run)


@router.post("/release", response_model=BatchReleaseOut)
async def release_batch(
    body: BatchReleaseIn,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """End each listed lease in its own transaction; the devices are reset."""

    async def run() -> Response:
        outcomes = await batch.release_batch(
            services.uow, principal, body.allocationIds, now=services.clock()
        )
        released = [o.value for o in outcomes if o.value is not None]
        request_resets(services.lifecycle, released)
        if released:
            services.queue.wake()  # the freed devices and quota may admit waiters
        return json_response(BatchReleaseOut.of(body.allocationIds, outcomes))

    return await idempotent(request, services, principal, key, run)


@router.post("/extend", response_model=BatchExtendOut)
async def extend_batch(
    body: BatchExtendIn,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """Extend each listed lease by ``additionalMinutes``, within its tenant's limits."""

    async def run() -> Response:
        outcomes = await batch.extend_batch(
            services.uow,
            principal,
            body.allocationIds,
            body.additionalMinutes,
            now=services.clock(),
        )
        return json_response(BatchExtendOut.of(body.allocationIds, outcomes))

    return await idempotent(request, services, principal, key, run)


@router.post("/query", response_model=BatchQueryOut)
async def query_batch(
    body: BatchQueryIn,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """Each user's allocations the caller may see, newest first (``activeOnly``: active
    ones only); at most 100 per user, ``total`` and ``nextCursor`` tell the rest."""

    async def run() -> Response:
        outcomes = await batch.query_batch(
            services.uow(), principal, body.userIds, active_only=body.activeOnly
        )
        return json_response(BatchQueryOut.of(body.userIds, outcomes))

    return await idempotent(request, services, principal, key, run)
