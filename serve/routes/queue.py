"""Wait-queue routes: join, look, cancel, list, statistics, and admin drains."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from scheduler.bootstrap import Services
from scheduler.domain.identity import require_admin
from scheduler.domain.queueing import QueueEntry
from scheduler.services import queue
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.idempotency import idempotent, json_response
from serve.schemas import (
    CancelIn,
    GrantedOut,
    ProcessBatchIn,
    QueueEntryOut,
    QueueJoinIn,
    QueuePage,
    QueuePositionOut,
)

router = APIRouter(prefix="/scheduler/queue", tags=["queue"])

Status = Literal["waiting", "fulfilled", "cancelled", "timed_out", "failed"]


async def views(services: Services, entries: list[QueueEntry]) -> list[QueueEntryOut]:
    described = await queue.describe_entries(
        services.uow,
        entries,
        now=services.clock(),
        policy=services.queue_policy,
        reset=timedelta(seconds=services.settings.device_reset_seconds),
    )
    return [QueueEntryOut.of(v) for v in described]


async def join(services: Services, entry: QueueEntry) -> QueueEntryOut:
    """The view of a new entry, after waking the queue (it may be granted at once)."""
    services.queue.wake(new_entries=True)
    return (await views(services, [entry]))[0]


@router.post("/join", status_code=201, response_model=QueueEntryOut)
async def join_queue(
    body: QueueJoinIn,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """Wait for a device. Honours ``Idempotency-Key``."""

    async def run() -> Response:
        entry = await queue.join_queue(
            services.uow(),
            principal,
            body.to_command(),
            now=services.clock(),
            limits=services.queue_limits,
        )
        return json_response(await join(services, entry), status_code=201)

    return await idempotent(request, services, principal, key, run)


@router.get("", response_model=QueuePage)
async def list_entries(
    principal: PrincipalDep,
    services: ServicesDep,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> QueuePage:
    page = await queue.list_entries(services.uow(), principal, status, limit, cursor)
    return QueuePage(
        items=await views(services, page.items), total=page.total, nextCursor=page.next_cursor
    )


@router.get("/stats")
async def stats(principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    raw = await queue.queue_stats(services.uow(), principal)
    return {
        "waiting": raw["waiting"],
        "fulfilled": raw["fulfilled"],
        "cancelled": raw["cancelled"],
        "timedOut": raw["timed_out"],
        "failed": raw["failed"],
        "averageWaitSeconds": raw["avg_wait_seconds"],
        "maxWaitSeconds": raw["max_wait_seconds"],
    }


@router.post("/process-next", response_model=GrantedOut)
async def process_next(principal: PrincipalDep, services: ServicesDep) -> GrantedOut:
    require_admin(principal)
    return GrantedOut(granted=await services.queue.drain(1))


@router.post("/process-batch", response_model=GrantedOut)
async def process_batch(
    body: ProcessBatchIn, principal: PrincipalDep, services: ServicesDep
) -> GrantedOut:
    require_admin(principal)
    return GrantedOut(granted=await services.queue.drain(body.maxCount))


@router.get("/{entry_id}", response_model=QueueEntryOut)
async def get_entry(
    entry_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep
) -> QueueEntryOut:
    entry = await queue.get_entry(services.uow(), principal, entry_id)
    return (await views(services, [entry]))[0]


@router.get("/{entry_id}/position", response_model=QueuePositionOut)
async def position(
    entry_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep
) -> QueuePositionOut:
    view = await get_entry(entry_id, principal, services)
    return QueuePositionOut(
        id=view.id,
        status=view.status,
        position=view.position,
        aheadCount=view.aheadCount,
        estimatedStartAt=view.estimatedStartAt,
        reason=view.reason,
    )


@router.post("/{entry_id}/cancel", response_model=QueueEntryOut)
async def cancel(
    entry_id: uuid.UUID,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
    body: CancelIn | None = None,
) -> Response:
    """Leave the queue. Honours ``Idempotency-Key``."""

    async def run() -> Response:
        entry = await queue.cancel_entry(
            services.uow(),
            principal,
            entry_id,
            now=services.clock(),
            reason=body.reason if body else None,
        )
        return json_response((await views(services, [entry]))[0])

    return await idempotent(request, services, principal, key, run)
