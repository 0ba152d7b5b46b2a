"""Node routes (admin only): register, inspect, cordon, and add devices."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from scheduler.bootstrap import Services
from scheduler.domain import limits
from scheduler.domain.fleet import Node, NodeStatus
from scheduler.services import device_health, fleet, host_placement, statistics
from scheduler.services.commands import SetNodeSchedulable
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.replies import reply
from serve.routes.links import answer_links, by_id, link_to
from serve.schemas import AddDevicesIn, DeviceList, DeviceOut, NodeIn, NodeOut
from serve.schemas.base import LabelFilter, parse_labels
from serve.schemas.fleet import SimulateIn
from serve.schemas.host_placement import HostPlacementIn, HostPlacementOut

router = APIRouter(prefix="/scheduler/nodes", tags=["nodes"])


NODE = by_id("id", "node_id")


@router.post(
    "",
    status_code=201,
    response_model=NodeOut,
    responses=answer_links(
        201,
        GetNode=link_to("GET", "/scheduler/nodes/{node_id}", parameters=NODE),
        AddDevices=link_to("POST", "/scheduler/nodes/{node_id}/devices", parameters=NODE),
        CordonNode=link_to("POST", "/scheduler/nodes/{node_id}/cordon", parameters=NODE),
        UncordonNode=link_to("POST", "/scheduler/nodes/{node_id}/uncordon", parameters=NODE),
    ),
)
async def register_node(
    body: NodeIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    handled = await services.commands.handle(body.to_command(), principal, key)
    return reply(handled, NodeOut.of(handled.result), 201)


@router.post("/placement", response_model=HostPlacementOut)
async def place_new_device(
    body: HostPlacementIn, principal: PrincipalDep, services: ServicesDep
) -> HostPlacementOut:
    """Where a new device of this spec would go (admins and services): the best host by
    ``strategy`` (default: the active strategy's type), with its score in [0, 1000], the
    reason, and the host's use once it lands; 409 ``no_capacity`` says why no host fits.
    Nothing is created."""
    choice, strategy = await host_placement.best_host(services.uow(), principal, body.to_query())
    return HostPlacementOut.of(choice, strategy)


@router.get("", response_model=list[NodeOut])
async def list_nodes(
    principal: PrincipalDep,
    services: ServicesDep,
    status: NodeStatus | None = None,
    label: Annotated[list[LabelFilter], Query(max_length=limits.MAX_LABELS)] = [],  # noqa: B006
) -> list[NodeOut]:
    """Every node, or those of ``status`` carrying every ``label`` (``key:value``)."""
    wanted = parse_labels(label)
    nodes = [
        n
        for n in await fleet.list_nodes(services.uow(), principal)
        if (status is None or n.status is status)
        and all(n.labels.get(k) == v for k, v in wanted.items())
    ]
    counts = await fleet.node_device_counts(services.uow())
    totals = await statistics.node_totals(services.uow())
    return [NodeOut.of(n, counts.get(n.id), totals.get(n.id)) for n in nodes]


@router.get("/{node_id}", response_model=NodeOut)
async def get_node(node_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep) -> NodeOut:
    """The node, with its devices by status, what its leases use, and a drain's progress."""
    return await node_out(services, await fleet.get_node(services.uow(), principal, node_id))


async def node_out(services: Services, node: Node) -> NodeOut:
    counts = await fleet.node_device_counts(services.uow())
    totals = await statistics.node_totals(services.uow())
    return NodeOut.of(node, counts.get(node.id), totals.get(node.id))


async def _schedulable(
    node_id: uuid.UUID,
    schedulable: bool,
    principal: PrincipalDep,
    services: ServicesDep,
    key: str | None,
) -> Response:
    handled = await services.commands.handle(
        SetNodeSchedulable(node_id, schedulable), principal, key
    )
    return reply(handled, NodeOut.of(handled.result))


@router.post("/{node_id}/cordon", response_model=NodeOut)
async def cordon(
    node_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    return await _schedulable(node_id, False, principal, services, key)


@router.post("/{node_id}/uncordon", response_model=NodeOut)
async def uncordon(
    node_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    return await _schedulable(node_id, True, principal, services, key)


@router.post("/{node_id}/devices", status_code=201, response_model=list[DeviceOut])
async def add_devices(
    node_id: uuid.UUID,
    body: AddDevicesIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """Create devices within the node's capacity and wait for them to be provisioned; the
    answer shows each device as it is now."""
    handled = await services.commands.handle(body.to_command(node_id), principal, key)
    created = handled.result.devices
    devices = await fleet.get_devices(services.uow(), [d.id for d in created])
    return reply(handled, DeviceList([DeviceOut.of(devices.get(d.id, d)) for d in created]), 201)


@router.post("/{node_id}/simulate", response_model=NodeOut)
async def simulate(
    node_id: uuid.UUID, body: SimulateIn, principal: PrincipalDep, services: ServicesDep
) -> NodeOut:
    """Admin, simulated driver only: a failed node stops its heartbeats and goes offline
    after ``PHONEFLEET_NODE_OFFLINE_AFTER_SECONDS`` (its leases moved); ``recover`` starts
    them again and it comes back."""
    await device_health.simulate_failure(
        services.uow(), services.lifecycle, principal, action=body.action, node_id=node_id
    )
    return await get_node(node_id, principal, services)
