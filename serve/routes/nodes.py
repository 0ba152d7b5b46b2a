"""Node routes (admin only): register, inspect, cordon, and add devices."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from scheduler.services import fleet
from serve.deps import PrincipalDep, ServicesDep
from serve.idempotency import IdempotentRoute
from serve.schemas import AddDevicesIn, DeviceOut, NodeIn, NodeOut

router = APIRouter(route_class=IdempotentRoute, prefix="/scheduler/nodes", tags=["nodes"])


@router.post("", status_code=201, response_model=NodeOut)
async def register_node(body: NodeIn, principal: PrincipalDep, services: ServicesDep) -> NodeOut:
    node = await fleet.register_node(
        services.uow(),
        principal,
        body.to_command(),
        now=services.clock(),
        default_host=services.settings.adb_host,
    )
    return NodeOut.of(node)


@router.get("", response_model=list[NodeOut])
async def list_nodes(principal: PrincipalDep, services: ServicesDep) -> list[NodeOut]:
    nodes = await fleet.list_nodes(services.uow(), principal)
    counts = await fleet.node_device_counts(services.uow())
    return [NodeOut.of(n, counts.get(n.id)) for n in nodes]


@router.get("/{node_id}", response_model=NodeOut)
async def get_node(node_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep) -> NodeOut:
    node = await fleet.get_node(services.uow(), principal, node_id)
    counts = await fleet.node_device_counts(services.uow())
    return NodeOut.of(node, counts.get(node.id))


@router.post("/{node_id}/cordon", response_model=NodeOut)
async def cordon(node_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep) -> NodeOut:
    node = await fleet.set_node_schedulable(
        services.uow(), principal, node_id, False, now=services.clock()
    )
    return NodeOut.of(node)


@router.post("/{node_id}/uncordon", response_model=NodeOut)
async def uncordon(node_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep) -> NodeOut:
    node = await fleet.set_node_schedulable(
        services.uow(), principal, node_id, True, now=services.clock()
    )
    return NodeOut.of(node)


@router.post("/{node_id}/devices", status_code=201, response_model=list[DeviceOut])
async def add_devices(
    node_id: uuid.UUID, body: AddDevicesIn, principal: PrincipalDep, services: ServicesDep
) -> list[DeviceOut]:
    """Create devices within the node's capacity and wait for them to be provisioned."""
    created = await fleet.add_devices(
        services.uow(), principal, node_id, body.to_command(), now=services.clock()
    )
    await services.lifecycle.provision(node_id, [d.id for d in created])
    devices = [await fleet.get_device(services.uow(), d.id) or d for d in created]
    return [DeviceOut.of(d) for d in devices]
