"""The console's node calls (#1, #6–#10, #12, #18 of the platform contract), each the native
command or read, rendered as the console reads it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from scheduler.bootstrap import Services
from scheduler.domain.errors import NodeNotFound
from scheduler.domain.identity import Principal
from scheduler.domain.usage_stats import MAX_TREND_HOURS, trend_window
from scheduler.services import statistics
from scheduler.services.node_operations import RemoveNode
from serve.cloudphone.bodies import ConsoleNodeIn, ConsoleNodeUpdateIn, status_command
from serve.cloudphone.views import (
    ConsoleNode,
    ConsoleNodeStatus,
    ConsolePage,
    ConsoleUsageTrend,
    TrendPoint,
    render,
)
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.routes import nodes as native
from serve.routes.nodes import node_out
from serve.schemas import NodeOut
from serve.schemas.node_operations import DrainIn, MaintenanceIn

router = APIRouter(
    prefix="/cloudphone/scheduler", tags=["platform console"], include_in_schema=False
)

Page = Annotated[int, Query(ge=1, le=1_000_000)]
PageSize = Annotated[int, Query(ge=1, le=1000)]
TrendHours = Annotated[int, Query(ge=1, le=MAX_TREND_HOURS)]


def _key(key: str | None, part: str) -> str | None:
    """One request's key for each of the commands it runs."""
    return f"{key}:{part}" if key is not None else None


async def _handled_node(
    services: Services, principal: Principal, command: object, key: str | None
) -> NodeOut:
    handled = await services.commands.handle(command, principal, key)
    return await node_out(services, handled.result)


@router.get("/nodes")
async def list_nodes(
    principal: PrincipalDep,
    services: ServicesDep,
    page: Page = 1,
    pageSize: PageSize = 20,
    status: ConsoleNodeStatus | None = None,
) -> Response:
    """Nodes by name, a page at a time; ``status`` in the console's terms."""
    every = [
        ConsoleNode.of(n)
        for n in await native.list_nodes(principal, services, None, [])
        if n.status != "removed"
    ]
    wanted = [n for n in every if status is None or n.status == status]
    return render(ConsolePage.cut(wanted, page, pageSize))


@router.post("/nodes", status_code=201)
async def register_node(
    body: ConsoleNodeIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    node = await _handled_node(services, principal, body.to_command(), key)
    return render(ConsoleNode.of(node), 201)


@router.get("/nodes/{node_id}")
async def get_node(node_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep) -> Response:
    """A removed node is gone for the console (it has no such status): 404."""
    node = await native.get_node(node_id, principal, services)
    if node.status == "removed":
        raise NodeNotFound()
    return render(ConsoleNode.of(node))


@router.put("/nodes/{node_id}")
async def update_node(
    node_id: uuid.UUID,
    body: ConsoleNodeUpdateIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """Name and labels, then the status (``maintenance``, ``draining``, ``inactive``:
    cordoned, ``active``): each change is the native command for it."""
    node = await native.get_node(node_id, principal, services)
    update = body.to_update(node_id)
    if update is not None:
        node = await _handled_node(services, principal, update, _key(key, "fields"))
    change = status_command(node_id, node.status, body.status) if body.status else None
    if change is not None:
        node = await _handled_node(services, principal, change, _key(key, "status"))
    return render(ConsoleNode.of(node))


@router.delete("/nodes/{node_id}")
async def remove_node(
    node_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    """409 ``node_in_use`` while leases or bookings remain on it."""
    node = await _handled_node(services, principal, RemoveNode(node_id), key)
    return render(ConsoleNode.of(node))


@router.post("/nodes/{node_id}/maintenance")
async def maintenance(
    node_id: uuid.UUID,
    body: MaintenanceIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    node = await _handled_node(services, principal, body.to_command(node_id), key)
    return render(ConsoleNode.of(node))


@router.post("/nodes/{node_id}/drain")
async def drain(
    node_id: uuid.UUID,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
    body: DrainIn | None = None,
) -> Response:
    """The console sends ``{}``: leases run to their end, no new ones."""
    command = (body or DrainIn()).to_command(node_id)
    return render(ConsoleNode.of(await _handled_node(services, principal, command, key)))


def _utc(moment: datetime | None) -> datetime | None:
    """A date without a zone is UTC."""
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


async def usage_trend(
    principal: Principal,
    services: Services,
    node_id: uuid.UUID | None,
    start: datetime | None,
    end: datetime | None,
    hours: int,
) -> Response:
    last, span = trend_window(_utc(start), _utc(end), hours, now=services.clock())
    buckets = await statistics.usage_trend(
        services.uow(), principal, hours=span, now=last, node_id=node_id
    )
    first = buckets[0].hour if buckets else last
    return render(
        ConsoleUsageTrend(
            nodeId=str(node_id) if node_id else None,
            startDate=first,
            endDate=last,
            hours=span,
            points=[TrendPoint.of(b) for b in buckets],
        )
    )


@router.get("/nodes/{node_id}/usage-trend")
async def node_usage_trend(
    node_id: uuid.UUID,
    principal: PrincipalDep,
    services: ServicesDep,
    startDate: datetime | None = None,
    endDate: datetime | None = None,
    hours: TrendHours = 24,
) -> Response:
    """Hourly buckets from ``startDate`` to ``endDate`` (default: the last ``hours``)."""
    return await usage_trend(principal, services, node_id, startDate, endDate, hours)
