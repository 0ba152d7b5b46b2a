"""The console's cluster calls (#2, #5, #16, #17, #19 of the platform contract): cluster
stats, tasks, where a device would go, moving a device's lease, and the cluster's trend."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import Response

from scheduler.domain.errors import InvalidRequest
from scheduler.domain.tasks import TaskStatus
from scheduler.services import host_placement, statistics
from scheduler.services.node_operations import RescheduleLease
from serve.cloudphone.bodies import ConsoleScheduleIn
from serve.cloudphone.nodes import Page, PageSize, TrendHours, usage_trend
from serve.cloudphone.views import (
    ConsoleClusterStats,
    ConsolePage,
    ConsolePlacement,
    ConsoleRescheduled,
    ConsoleTask,
    render,
)
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep

router = APIRouter(
    prefix="/cloudphone/scheduler", tags=["platform console"], include_in_schema=False
)


@router.get("/resources/cluster-stats")
async def cluster_stats(principal: PrincipalDep, services: ServicesDep) -> Response:
    """Capacity and what active leases use; storage in whole GB, utilization in percent."""
    stats = await statistics.fleet_stats(services.uow(), principal)
    return render(ConsoleClusterStats.of(stats))


@router.get("/tasks")
async def list_tasks(
    principal: PrincipalDep,
    services: ServicesDep,
    page: Page = 1,
    pageSize: PageSize = 20,
    status: TaskStatus | None = None,
) -> Response:
    """Queue entries and leases, newest first: ``pending`` (waiting), ``running`` (leased),
    ``completed`` (released or expired), ``failed`` (revoked, or never served)."""
    tasks, total = await statistics.tasks(services.uow(), principal, status, page, pageSize)
    items = [ConsoleTask.of(t) for t in tasks]
    return render(ConsolePage.of(items, total, page, pageSize))


@router.post("/schedule")
async def schedule(
    body: ConsoleScheduleIn, principal: PrincipalDep, services: ServicesDep
) -> Response:
    """Where a device of this spec would be created (nothing is): the console names a
    device, whose spec is read; the original API gives ``cpuCores`` and ``memoryMB``. The
    best host by the active strategy, ``nodeId`` preferred when it fits; 409
    ``no_capacity`` with the reasons when none does."""
    spec = None
    if body.deviceId is not None:
        spec = await host_placement.spec_of_device(services.uow(), principal, body.deviceId)
    elif body.cpuCores is None or body.memoryMB is None:
        raise InvalidRequest("give deviceId, or cpuCores and memoryMB")
    choice, strategy = await host_placement.best_host(
        services.uow(), principal, body.to_query(spec)
    )
    return render(ConsolePlacement.of(choice, strategy))


@router.post("/reschedule/{device_id}")
async def reschedule(
    device_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    """Move the lease on this device to a twin now (409 ``no_capacity`` if none is free,
    404 ``allocation_not_found`` if it has none)."""
    handled = await services.commands.handle(RescheduleLease(device_id), principal, key)
    return render(ConsoleRescheduled.of(device_id, handled.result))


@router.get("/cluster/usage-trend")
async def cluster_usage_trend(
    principal: PrincipalDep,
    services: ServicesDep,
    startDate: datetime | None = None,
    endDate: datetime | None = None,
    hours: TrendHours = 24,
) -> Response:
    return await usage_trend(principal, services, None, startDate, endDate, hours)
