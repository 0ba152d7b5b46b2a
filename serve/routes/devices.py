"""Device routes: allocate (or queue), release, and list what is available."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from scheduler.domain import limits
from scheduler.services import device_health, fleet
from scheduler.services.commands import Grant
from scheduler.services.device_health import ReportDevice
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.replies import reply
from serve.routes.links import answer_links, by_id, link_to
from serve.routes.queue import FIRST_VIEW_SECONDS, entry_view
from serve.schemas import (
    AllocateIn,
    DeviceOut,
    DevicePage,
    GrantOut,
    QueueEntryOut,
    ReleaseIn,
    ReleaseOut,
)
from serve.schemas.base import LabelFilter, parse_labels
from serve.schemas.fleet import DeviceReportIn, DeviceReportOut, SimulateIn
from serve.schemas.host_placement import ProvisionIn, ProvisionOut

router = APIRouter(prefix="/scheduler/devices", tags=["devices"])

LEASE = by_id("allocationId", "allocation_id")


@router.post(
    "/allocate",
    status_code=201,
    response_model=GrantOut,
    responses={
        202: {"model": QueueEntryOut, "description": "queued (queueIfUnavailable)"},
        **answer_links(
            201,
            GetAllocation=link_to(
                "GET", "/scheduler/allocations/{allocation_id}", parameters=LEASE
            ),
            ExtendAllocation=link_to(
                "PUT", "/scheduler/allocations/{allocation_id}/extend", parameters=LEASE
            ),
            ReleaseAllocation=link_to(
                "POST",
                "/scheduler/devices/release",
                body={"allocationId": "$response.body#/allocationId"},
            ),
        ),
    },
)
async def allocate(
    body: AllocateIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    """Lease a device now; with ``queueIfUnavailable`` a request nothing fits waits in the
    queue instead (202 with the entry) rather than failing with 409. Honours
    ``Idempotency-Key``: a retry gets the same grant, or the same entry."""
    handled = await services.commands.handle(body.to_command(), principal, key)
    if isinstance(handled.result, Grant):
        return reply(handled, GrantOut.of(handled.result), 201)
    entry = await entry_view(
        services,
        principal,
        handled.result.entry.id,
        wait_seconds=FIRST_VIEW_SECONDS,
        for_view=True,
    )
    return reply(handled, QueueEntryOut.of(entry), 202)


@router.post("/provision", status_code=201, response_model=ProvisionOut)
async def provision(
    body: ProvisionIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    """Create ``count`` devices of ``spec`` on the hosts where each fits best (admins and
    services): ``planned`` says how many go where, with the first one's score and reason;
    the devices start ``provisioning``. ``dryRun`` answers the plan only (200). ``atomic``
    (default): all or nothing, 409 ``no_capacity`` saying why; false: as many as fit.
    Honours ``Idempotency-Key``."""
    handled = await services.commands.handle(body.to_command(), principal, key)
    return reply(handled, ProvisionOut.of(handled.result), 200 if body.dryRun else 201)


@router.post("/release", response_model=ReleaseOut)
async def release(
    body: ReleaseIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    """End a lease; its device is reset. Honours ``Idempotency-Key``."""
    handled = await services.commands.handle(body.to_command(), principal, key)
    return reply(handled, ReleaseOut.of(handled.result))


@router.get("/available", response_model=DevicePage)
async def available(
    principal: PrincipalDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    label: Annotated[list[LabelFilter], Query(max_length=limits.MAX_LABELS)] = [],  # noqa: B006
) -> DevicePage:
    """Available devices on ready nodes, by name (``label=k:v`` filters). Without a filter,
    ``total`` is the fleet's count of at most a second ago; with one, it is counted now."""
    page = await fleet.list_available_devices(
        services.uow(), parse_labels(label), limit, cursor, services.available_total
    )
    return DevicePage(
        items=[DeviceOut.of(d) for d in page.items], total=page.total, nextCursor=page.next_cursor
    )


@router.post("/{device_id}/report", response_model=DeviceReportOut)
async def report(
    device_id: uuid.UUID,
    body: DeviceReportIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """What an admin, a service or a node agent learned of a device: ``failed`` quarantines
    it and moves its lease to a device that serves it as well (``allocation.moved``), or
    revokes it (``device_failed``) when none is free; ``recovered`` resets it, and it is
    leased again once that passes."""
    command = ReportDevice(device_id, body.status, body.reason)
    handled = await services.commands.handle(command, principal, key)
    return reply(handled, DeviceReportOut.of(handled.result))


@router.post("/{device_id}/simulate", response_model=DeviceOut)
async def simulate(
    device_id: uuid.UUID, body: SimulateIn, principal: PrincipalDep, services: ServicesDep
) -> DeviceOut:
    """Admin, simulated driver only: fail a device (reported failed at once, its lease moved
    or revoked) or recover it (reset, then available)."""
    await device_health.simulate_failure(
        services.uow(), services.lifecycle, principal, action=body.action, device_id=device_id
    )
    (device,) = (await fleet.get_devices(services.uow(), [device_id])).values()
    return DeviceOut.of(device)
