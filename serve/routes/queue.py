"""Wait-queue routes: join, look, cancel, list, statistics, and admin drains."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from scheduler.bootstrap import Services
from scheduler.domain.queueing import QueueEntry
from scheduler.services import queue
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.replies import handle, reply
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
        policy=services.config.queue_policy,
        reset=services.config.reset,
    )
    return [QueueEntryOut.of(v) for v in described]


@router.post("/join", status_code=201, response_model=QueueEntryOut)
async def join_queue(
    body: QueueJoinIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    """Wait for a device. Honours ``Idempotency-Key``."""
    handled = await handle(services, body.to_command(), principal, key)
    (view,) = await views(services, [handled.result.entry])
    return reply(handled, view, 201)


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
async def process_next(
    principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    handled = await handle(services, queue.DrainQueue(1), principal, key)
    return reply(handled, GrantedOut(granted=handled.result.count))


@router.post("/process-batch", response_model=GrantedOut)
async def process_batch(
    body: ProcessBatchIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    handled = await handle(services, queue.DrainQueue(body.maxCount), principal, key)
    return reply(handled, GrantedOut(granted=handled.result.count))


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
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
    body: CancelIn | None = None,
) -> Response:
    """Leave the queue. Honours ``Idempotency-Key``."""
    command = queue.CancelQueueEntry(entry_id, body.reason if body else None)
    handled = await handle(services, command, principal, key)
    (view,) = await views(services, [handled.result])
    return reply(handled, view)
