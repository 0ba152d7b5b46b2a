"""Wait-queue routes: join, look (or wait for a change), cancel, list, statistics, and
admin drains. Reads show what the last drain stored: one lookup, never a reordering."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from scheduler.bootstrap import Services
from scheduler.domain.identity import Principal
from scheduler.domain.queueing import QueueEntry, QueueStatus
from scheduler.services import queue
from scheduler.services.ports import VIEWS_UPDATED, entry_changed
from scheduler.services.waiting import MAX_WAIT_SECONDS, read_until
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.replies import reply
from serve.routes.links import answer_links, by_id, link_to
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
WaitSeconds = Annotated[
    float,
    Query(
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="wait up to this long for the entry to leave `waiting` (no polling)",
    ),
]
#: How long a join waits for the drain its wake starts, to answer with the entry's place.
FIRST_VIEW_SECONDS = 2.0


async def entry_view(
    services: Services,
    principal: Principal,
    entry_id: uuid.UUID,
    *,
    wait_seconds: float = 0,
    for_view: bool = False,
) -> QueueEntry:
    """The entry as the last drain saw it; waiting up to ``wait_seconds`` for it to leave
    ``waiting`` (``for_view``: for its first view)."""

    def settled(entry: QueueEntry) -> bool:
        waiting = entry.status is QueueStatus.WAITING
        return not waiting or (for_view and entry.view is not None)

    keys = (entry_changed(entry_id), VIEWS_UPDATED) if for_view else (entry_changed(entry_id),)
    return await read_until(
        services.changes,
        keys,
        lambda: queue.get_entry(services.uow(), principal, entry_id),
        settled,
        seconds=wait_seconds,
    )


ENTRY = by_id("id", "entry_id")


@router.post(
    "/join",
    status_code=201,
    response_model=QueueEntryOut,
    responses=answer_links(
        201,
        GetEntry=link_to("GET", "/scheduler/queue/{entry_id}", parameters=ENTRY),
        GetPosition=link_to("GET", "/scheduler/queue/{entry_id}/position", parameters=ENTRY),
        CancelEntry=link_to("POST", "/scheduler/queue/{entry_id}/cancel", parameters=ENTRY),
    ),
)
async def join_queue(
    body: QueueJoinIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    """Wait for a device. Honours ``Idempotency-Key``. The answer shows the entry's place
    once the drain its joining started has placed it."""
    handled = await services.commands.handle(body.to_command(), principal, key)
    entry = await entry_view(
        services,
        principal,
        handled.result.entry.id,
        wait_seconds=FIRST_VIEW_SECONDS,
        for_view=True,
    )
    return reply(handled, QueueEntryOut.of(entry), 201)


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
        items=[QueueEntryOut.of(e) for e in page.items],
        total=page.total,
        nextCursor=page.next_cursor,
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
    handled = await services.commands.handle(queue.DrainQueue(1), principal, key)
    return reply(handled, GrantedOut(granted=handled.result.count))


@router.post("/process-batch", response_model=GrantedOut)
async def process_batch(
    body: ProcessBatchIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    handled = await services.commands.handle(queue.DrainQueue(body.maxCount), principal, key)
    return reply(handled, GrantedOut(granted=handled.result.count))


@router.get("/{entry_id}", response_model=QueueEntryOut)
async def get_entry(
    entry_id: uuid.UUID,
    principal: PrincipalDep,
    services: ServicesDep,
    waitSeconds: WaitSeconds = 0,
) -> Response:
    entry = await entry_view(services, principal, entry_id, wait_seconds=waitSeconds)
    return Response(QueueEntryOut.of(entry).model_dump_json(), media_type="application/json")


@router.get("/{entry_id}/position", response_model=QueuePositionOut)
async def position(
    entry_id: uuid.UUID,
    principal: PrincipalDep,
    services: ServicesDep,
    waitSeconds: WaitSeconds = 0,
) -> QueuePositionOut:
    view = QueueEntryOut.of(
        await entry_view(services, principal, entry_id, wait_seconds=waitSeconds)
    )
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
    handled = await services.commands.handle(command, principal, key)
    return reply(handled, QueueEntryOut.of(handled.result))
