"""Use cases of the fleet: registering nodes and devices, cordons, and device lifecycle."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from scheduler.domain import events
from scheduler.domain.errors import NodeNotFound
from scheduler.domain.fleet import (
    Device,
    DeviceSpec,
    DeviceStatus,
    Node,
    NodeCapacity,
    NodeStatus,
    check_node_room,
)
from scheduler.domain.identity import Principal, require_admin
from scheduler.services.commands import AddDevices, Page, RegisterNode
from scheduler.services.ports import DeviceLifecycle, UnitOfWork


async def register_node(
    uow: UnitOfWork,
    principal: Principal,
    command: RegisterNode,
    *,
    now: datetime,
    default_host: str,
) -> Node:
    """Raises:
    Forbidden: the caller is not an admin.
    AlreadyExists: a node with that name exists.
    """
    require_admin(principal)
    node = Node(
        id=uuid.uuid4(),
        name=command.name,
        capacity=NodeCapacity(command.resources, command.max_devices),
        labels=dict(command.labels),
        taints=command.taints,
        status=NodeStatus.READY,
        host=command.host or default_host,
        created_at=now,
        last_heartbeat_at=None,
    )
    async with uow:
        await uow.nodes.add(node)
        await uow.outbox.add(
            [
                events.Event(
                    events.NODE_REGISTERED,
                    str(node.id),
                    {"nodeId": str(node.id), "name": node.name},
                    now,
                )
            ]
        )
        await uow.commit()
    return node


async def get_node(uow: UnitOfWork, principal: Principal, node_id: uuid.UUID) -> Node:
    """Raises:
    Forbidden: the caller is not an admin.
    NodeNotFound: no such node.
    """
    require_admin(principal)
    async with uow:
        node = await uow.nodes.get(node_id)
    if node is None:
        raise NodeNotFound()
    return node


async def list_nodes(uow: UnitOfWork, principal: Principal) -> list[Node]:
    """Raises:
    Forbidden: the caller is not an admin.
    """
    require_admin(principal)
    async with uow:
        return await uow.nodes.list()


async def node_device_counts(uow: UnitOfWork) -> dict[uuid.UUID, dict[str, int]]:
    async with uow:
        return await uow.nodes.device_counts()


async def set_node_schedulable(
    uow: UnitOfWork,
    principal: Principal,
    node_id: uuid.UUID,
    schedulable: bool,
    *,
    now: datetime,
) -> Node:
    """Cordon (no new leases on the node's devices) or uncordon a node.

    Raises:
        Forbidden: the caller is not an admin.
        NodeNotFound: no such node.
    """
    require_admin(principal)
    status = NodeStatus.READY if schedulable else NodeStatus.CORDONED
    async with uow:
        node = await uow.nodes.set_status(node_id, status)
        if node is None:
            raise NodeNotFound()
        event_type = events.NODE_UNCORDONED if schedulable else events.NODE_CORDONED
        await uow.outbox.add(
            [events.Event(event_type, str(node_id), {"nodeId": str(node_id)}, now)]
        )
        await uow.commit()
    return node


async def add_devices(
    uow: UnitOfWork,
    principal: Principal,
    node_id: uuid.UUID,
    command: AddDevices,
    *,
    now: datetime,
) -> list[Device]:
    """Create devices on a node, within its capacity; they start ``provisioning``.

    Raises:
        Forbidden: the caller is not an admin.
        NodeNotFound: no such node.
        NodeCapacityExceeded: the node cannot hold them.
    """
    require_admin(principal)
    async with uow:
        node = await uow.nodes.get(node_id, lock=True)
        if node is None:
            raise NodeNotFound()
        used, count = await uow.nodes.device_usage(node_id)
        check_node_room(node.capacity, used, count, command.resources, command.count)
        first_port = await uow.devices.next_adb_port(node.host)
        first_index = count
        devices = [
            Device(
                id=uuid.uuid4(),
                node_id=node_id,
                name=f"{node.name}-{first_index + i:04d}",
                status=DeviceStatus.PROVISIONING,
                spec=DeviceSpec(command.resources, command.android_version, dict(command.labels)),
                adb_host=node.host,
                adb_port=first_port + i,
                created_at=now,
            )
            for i in range(command.count)
        ]
        await uow.devices.add_many(devices)
        await uow.commit()
    return devices


async def mark_devices_ready(
    uow: UnitOfWork, device_ids: list[uuid.UUID], source: DeviceStatus, *, now: datetime
) -> list[Device]:
    """Provisioning or a reset finished: the devices become available (once)."""
    async with uow:
        ready = await uow.devices.transition(device_ids, source, DeviceStatus.AVAILABLE, now)
        kind = (
            events.DEVICE_PROVISIONED
            if source is DeviceStatus.PROVISIONING
            else events.DEVICE_READY
        )
        await uow.outbox.add(
            [
                events.Event(
                    kind, str(d.id), {"deviceId": str(d.id), "nodeId": str(d.node_id)}, now
                )
                for d in ready
            ]
        )
        await uow.commit()
    return ready


async def devices_awaiting_work(uow: UnitOfWork, node_ids: list[uuid.UUID]) -> list[Device]:
    """Devices of these nodes still provisioning or resetting (for reconciliation)."""
    async with uow:
        return await uow.devices.in_status(
            node_ids, [DeviceStatus.PROVISIONING, DeviceStatus.RESETTING]
        )


async def heartbeat_nodes(uow: UnitOfWork, node_ids: list[uuid.UUID], *, now: datetime) -> None:
    async with uow:
        await uow.nodes.heartbeat(node_ids, now)
        await uow.commit()


async def list_available_devices(
    uow: UnitOfWork, labels: dict[str, str], limit: int, cursor: str | None
) -> Page[Device]:
    async with uow:
        return await uow.devices.list_available(labels, limit, cursor)


async def get_device(uow: UnitOfWork, device_id: uuid.UUID) -> Device | None:
    async with uow:
        return await uow.devices.get(device_id)


def reset_devices(
    lifecycle: DeviceLifecycle, devices: Iterable[tuple[uuid.UUID, uuid.UUID]]
) -> None:
    """Start the reset of these ``(node, device)`` pairs, one request per node."""
    by_node: dict[uuid.UUID, list[uuid.UUID]] = {}
    for node_id, device_id in devices:
        by_node.setdefault(node_id, []).append(device_id)
    for node_id, device_ids in by_node.items():
        lifecycle.request_reset(node_id, device_ids)
