"""Device routes: allocate, release, and list what is available."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import StringConstraints

from scheduler.domain import limits
from scheduler.domain.errors import InvalidRequest, NoCapacity
from scheduler.services import allocations, fleet, queue
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.idempotency import idempotent, json_response
from serve.routes.queue import join
from serve.schemas import (
    AllocateIn,
    DeviceOut,
    DevicePage,
    GrantOut,
    QueueEntryOut,
    ReleaseIn,
    ReleaseOut,
)

router = APIRouter(prefix="/scheduler/devices", tags=["devices"])

#: ``key:value`` (FastAPI copies list defaults, so ``[]`` below is safe).
LabelFilter = Annotated[
    str, StringConstraints(max_length=limits.MAX_LABEL_KEY + 1 + limits.MAX_LABEL_VALUE)
]


@router.post(
    "/allocate",
    status_code=201,
    response_model=GrantOut,
    responses={202: {"model": QueueEntryOut, "description": "queued (queueIfUnavailable)"}},
)
async def allocate(
    body: AllocateIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Any:
    """Lease a device now; with ``queueIfUnavailable`` a request nothing fits waits in the
    queue instead (202 with the entry) rather than failing with 409."""
    try:
        grant = await allocations.allocate_device(
            services.uow(), principal, body.to_command(), now=services.clock(), idempotency_key=key
        )
    except NoCapacity:
        if not body.queueIfUnavailable:
            raise
        entry = await queue.join_queue(
            services.uow(),
            principal,
            body.to_queue_command(),
            now=services.clock(),
            limits=services.queue_limits,
        )
        return JSONResponse((await join(services, entry)).model_dump(mode="json"), status_code=202)
    return GrantOut.of(grant)


@router.post("/release", response_model=ReleaseOut)
async def release(
    body: ReleaseIn,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """End a lease; its device is reset. Honours ``Idempotency-Key``."""

    async def run() -> Response:
        released = await allocations.release_allocation(
            services.uow(),
            principal,
            allocation_id=body.allocationId,
            device_id=body.deviceId,
            now=services.clock(),
        )
        services.lifecycle.request_reset(released.node_id, [released.device_id])
        services.queue.wake()  # the freed quota may admit a waiter on another device
        return json_response(ReleaseOut.of(released))

    return await idempotent(request, services, principal, key, run)


def parse_labels(labels: list[str]) -> dict[str, str]:
    """Raises:
    InvalidRequest: a label is not ``key:value``.
    """
    parsed = {}
    for label in labels:
        key, sep, value = label.partition(":")
        if not sep or not key:
            raise InvalidRequest(f"label filter {label!r} must be key:value")
        parsed[key] = value
    return parsed


@router.get("/available", response_model=DevicePage)
async def available(
    principal: PrincipalDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    label: Annotated[list[LabelFilter], Query(max_length=limits.MAX_LABELS)] = [],  # noqa: B006
) -> DevicePage:
    page = await fleet.list_available_devices(services.uow(), parse_labels(label), limit, cursor)
    return DevicePage(
        items=[DeviceOut.of(d) for d in page.items], total=page.total, nextCursor=page.next_cursor
    )
