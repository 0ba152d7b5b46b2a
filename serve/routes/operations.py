"""Operating nodes and devices (admin only): maintenance, drains, edits, removal, retirement,
and moving one device's lease. Each is a command (``Idempotency-Key`` honoured)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response

from scheduler.domain.fleet import Node
from scheduler.services.command_path import Handled
from scheduler.services.node_operations import RemoveNode, RescheduleLease, RetireDevice
from scheduler.services.node_operations import UpdateDevice as UpdateDeviceCommand
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.replies import reply
from serve.routes.nodes import node_out
from serve.schemas import DeviceOut, NodeOut
from serve.schemas.node_operations import (
    DevicePatchIn,
    DrainIn,
    MaintenanceIn,
    NodePatchIn,
    RescheduledOut,
    RescheduleIn,
)

router = APIRouter(tags=["operations"])


async def _node_reply(
    handled: Handled[Node], services: ServicesDep, status_code: int = 200
) -> Response:
    return reply(handled, await node_out(services, handled.result), status_code)


@router.post("/scheduler/nodes/{node_id}/maintenance", response_model=NodeOut)
async def maintenance(
    node_id: uuid.UUID,
    body: MaintenanceIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """``enable``: no new leases on the node, running ones go on to their end (status
    ``maintenance``); disabling brings it back to ``ready``. 409 ``node_state_conflict``
    while draining, drained, offline."""
    handled = await services.commands.handle(body.to_command(node_id), principal, key)
    return await _node_reply(handled, services)


@router.post("/scheduler/nodes/{node_id}/drain", response_model=NodeOut)
async def drain(
    node_id: uuid.UUID,
    body: DrainIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """No new leases; ``migrate`` moves every lease now (as for a failure), ``wait`` lets
    them end and moves what is left at the deadline. Status ``draining`` then ``drained``;
    the progress (``drain.leasesLeft``) is in ``GET /scheduler/nodes/{id}``."""
    handled = await services.commands.handle(body.to_command(node_id), principal, key)
    return await _node_reply(handled, services)


@router.patch("/scheduler/nodes/{node_id}", response_model=NodeOut)
async def update_node(
    node_id: uuid.UUID,
    body: NodePatchIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """Name, labels, taints, capacity (409 ``node_capacity_exceeded`` below what its devices
    use)."""
    handled = await services.commands.handle(body.to_command(node_id), principal, key)
    return await _node_reply(handled, services)


@router.delete("/scheduler/nodes/{node_id}", response_model=NodeOut)
async def remove_node(
    node_id: uuid.UUID,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
    drain: bool = False,
) -> Response:
    """Remove a node (its devices retired): 409 ``node_in_use`` while leases or bookings
    remain; ``?drain=true`` moves its leases now and removes it once drained (202 while
    draining)."""
    handled = await services.commands.handle(RemoveNode(node_id, drain), principal, key)
    draining = handled.result.status.value == "draining"
    return await _node_reply(handled, services, 202 if draining else 200)


@router.patch("/scheduler/devices/{device_id}", response_model=DeviceOut)
async def update_device(
    device_id: uuid.UUID,
    body: DevicePatchIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """Replace the device's labels."""
    command = UpdateDeviceCommand(device_id, dict(body.labels))
    handled = await services.commands.handle(command, principal, key)
    return reply(handled, DeviceOut.of(handled.result))


@router.delete("/scheduler/devices/{device_id}", response_model=DeviceOut)
async def retire_device(
    device_id: uuid.UUID,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
    drain: bool = False,
) -> Response:
    """Retire a device: 409 ``device_in_use`` while leased or booked; ``?drain=true`` moves
    its lease first (revoked if no twin is free)."""
    handled = await services.commands.handle(RetireDevice(device_id, drain), principal, key)
    return reply(handled, DeviceOut.of(handled.result))


@router.post("/scheduler/reschedule/{device_id}", response_model=RescheduledOut)
async def reschedule(
    device_id: uuid.UUID,
    body: RescheduleIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """Move the lease on this device now, to a device of the same size, Android version and
    labels (the lease keeps its id, expiry and bill; ``allocation.moved``). 409
    ``no_capacity`` if none is free: unlike a failure, the lease then stays."""
    command = RescheduleLease(device_id, body.reason, body.preferredNodeId)
    handled = await services.commands.handle(command, principal, key)
    return reply(handled, RescheduledOut.of(handled.result))
