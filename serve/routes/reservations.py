"""Reservation routes: book a device for a window, look, move, cancel, check, summarize."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from scheduler.services import reservations
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.replies import reply
from serve.routes.links import answer_links, by_id, link_to
from serve.schemas import (
    CancelIn,
    ReservationIn,
    ReservationOut,
    ReservationPage,
    ReservationUpdateIn,
    conflicts_out,
)

router = APIRouter(prefix="/scheduler/reservations", tags=["reservations"])

Status = Literal["pending", "active", "completed", "cancelled", "no_show", "failed"]


BOOKING = by_id("id", "reservation_id")


@router.post(
    "",
    status_code=201,
    response_model=ReservationOut,
    responses=answer_links(
        201,
        GetReservation=link_to(
            "GET", "/scheduler/reservations/{reservation_id}", parameters=BOOKING
        ),
        UpdateReservation=link_to(
            "PUT", "/scheduler/reservations/{reservation_id}", parameters=BOOKING
        ),
        CancelReservation=link_to(
            "POST", "/scheduler/reservations/{reservation_id}/cancel", parameters=BOOKING
        ),
    ),
)
async def create(
    body: ReservationIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    """Book a device for a window. Honours ``Idempotency-Key``."""
    handled = await services.commands.handle(body.to_command(), principal, key)
    return reply(handled, ReservationOut.of(handled.result), 201)


@router.get("", response_model=ReservationPage)
async def list_reservations(
    principal: PrincipalDep,
    services: ServicesDep,
    status: Status | None = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> ReservationPage:
    page = await reservations.list_reservations(
        services.uow(), principal, status=status, since=from_, until=to, limit=limit, cursor=cursor
    )
    return ReservationPage(
        items=[ReservationOut.of(r) for r in page.items],
        total=page.total,
        nextCursor=page.next_cursor,
    )


@router.post("/check-conflict")
async def check_conflict(
    body: ReservationIn, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    device, conflicts = await reservations.check_conflict(
        services.uow(),
        principal,
        body.to_command(),
        now=services.clock(),
        rules=services.config.booking_rules,
        reset=services.config.reset,
    )
    return {
        "available": device is not None,
        "deviceId": str(device) if device else None,
        "conflicts": conflicts_out(conflicts),
    }


@router.get("/stats/summary")
async def summary(principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    raw = await reservations.reservation_stats(services.uow(), principal, now=services.clock())
    return {
        "total": raw["total"],
        "pending": raw["pending"],
        "active": raw["active"],
        "completed": raw["completed"],
        "cancelled": raw["cancelled"],
        "failed": raw["failed"],
        "startingWithinDay": raw["starting_within_day"],
    }


@router.get("/{reservation_id}", response_model=ReservationOut)
async def get(
    reservation_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep
) -> ReservationOut:
    return ReservationOut.of(
        await reservations.get_reservation(services.uow(), principal, reservation_id)
    )


@router.put("/{reservation_id}", response_model=ReservationOut)
async def update(
    reservation_id: uuid.UUID,
    body: ReservationUpdateIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """Move or resize a pending booking. Honours ``Idempotency-Key``."""
    command = reservations.UpdateReservation(reservation_id, body.startTime, body.durationMinutes)
    handled = await services.commands.handle(command, principal, key)
    return reply(handled, ReservationOut.of(handled.result))


@router.post("/{reservation_id}/cancel", response_model=ReservationOut)
async def cancel(
    reservation_id: uuid.UUID,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
    body: CancelIn | None = None,
) -> Response:
    """Cancel a pending booking. Honours ``Idempotency-Key``."""
    command = reservations.CancelReservation(reservation_id, body.reason if body else None)
    handled = await services.commands.handle(command, principal, key)
    return reply(handled, ReservationOut.of(handled.result))


@router.post("/{reservation_id}/check-in", response_model=ReservationOut)
async def check_in(
    reservation_id: uuid.UUID,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """Its user took the started booking's device (within ``checkInBy``, or it is a no-show:
    its lease revoked with reason ``no_show``). 409 ``reservation_not_active`` before its
    start or after its end; a second check-in changes nothing."""
    command = reservations.CheckIn(reservation_id)
    handled = await services.commands.handle(command, principal, key)
    return reply(handled, ReservationOut.of(handled.result))
