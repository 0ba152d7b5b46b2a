"""Use cases of the fleet: registering nodes and devices, cordons, and device lifecycle."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime

from scheduler.domain import events
from scheduler.domain.errors import NodeNotFound, NodeStateConflict
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
from scheduler.services.command_path import Unit
from scheduler.services.commands import (
    AddDevices,
    AddedDevices,
    Page,
    RegisterNode,
    SetNodeSchedulable,
)
from scheduler.services.ports import UnitOfWork


async def register_node(command: RegisterNode, unit: Unit) -> Node:
    """Raises:
    Forbidden: the caller is not an admin.
    AlreadyExists: a node with that name exists.
    """
    require_admin(unit.principal)
    node = Node(
        id=uuid.uuid4(),
        name=command.name,
        capacity=NodeCapacity(
            command.resources,
            command.max_devices,
            command.cpu_allocation_rate,
            command.memory_allocation_rate,
        ),
        labels=dict(command.labels),
        taints=command.taints,
        status=NodeStatus.READY,
        host=command.host or unit.config.default_host,
        created_at=unit.now,
        last_heartbeat_at=None,
        port=command.port,
    )
    await unit.uow.nodes.add(node)
    unit.emit(events.NodeRegistered(occurred_at=unit.now, node_id=node.id, name=node.name))
    unit.effects.start_agent(node.id, node.host)  # it heartbeats from now on, devices or not
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


async def set_node_schedulable(command: SetNodeSchedulable, unit: Unit) -> Node:
    """Cordon (no new leases on the node's devices) or uncordon a node: only a ready or
    cordoned one (a node in maintenance, draining, drained or offline keeps its state).

    Raises:
        Forbidden: the caller is not an admin.
        NodeNotFound: no such node.
        NodeStateConflict: it is neither ready nor cordoned.
    """
    require_admin(unit.principal)
    held = await unit.uow.nodes.get(command.node_id, lock=True)
    if held is None or held.status is NodeStatus.REMOVED:
        raise NodeNotFound()
    if held.status not in (NodeStatus.READY, NodeStatus.CORDONED):
        raise NodeStateConflict(f"a node {held.status.value} cannot be cordoned or uncordoned")
    status = NodeStatus.READY if command.schedulable else NodeStatus.CORDONED
    node = await unit.uow.nodes.set_status(command.node_id, status)
    assert node is not None
    kind = events.NodeUncordoned if command.schedulable else events.NodeCordoned
    unit.emit(kind(occurred_at=unit.now, node_id=node.id))
    if command.schedulable:
        unit.effects.wake()  # its free devices may serve waiters
    return node


async def add_devices(command: AddDevices, unit: Unit) -> AddedDevices:
    """Create devices on a node, within its capacity; they start ``provisioning``, and the
    node provisions them once the unit commits.

    Raises:
        Forbidden: the caller is not an admin.
        NodeNotFound: no such node.
        NodeCapacityExceeded: the node cannot hold them.
    """
    require_admin(unit.principal)
    return AddedDevices(await create_devices(unit, command))


async def create_devices(unit: Unit, command: AddDevices) -> list[Device]:
    """``add_devices`` for any caller: the node's row locked, its room checked (so that
    concurrent creations never overfill it), the devices written ``provisioning``.

    Raises:
        NodeNotFound: no such node.
        NodeCapacityExceeded: the node cannot hold them.
        NodeStateConflict: ``only_if_ready`` and the node stopped taking devices meanwhile
            (a drain, maintenance or cordon committed after the plan read it).
    """
    uow = unit.uow
    node = await uow.nodes.get(command.node_id, lock=True)
    if node is None:
        raise NodeNotFound()
    if command.only_if_ready and node.status is not NodeStatus.READY:
        raise NodeStateConflict(
            f"host {node.name} became {node.status.value} while the provisioning was planned;"
            " plan again"
        )
    used, count = await uow.nodes.device_usage(node.id)
    check_node_room(node.capacity, used, count, command.resources, command.count)
    first_port = await uow.devices.next_adb_port(node.host)
    devices = [
        Device(
            id=uuid.uuid4(),
            node_id=node.id,
            name=f"{node.name}-{count + i:04d}",
            status=DeviceStatus.PROVISIONING,
            spec=DeviceSpec(command.resources, command.android_version, dict(command.labels)),
            adb_host=node.host,
            adb_port=first_port + i,
            created_at=unit.now,
        )
        for i in range(command.count)
    ]
    await uow.devices.add_many(devices)
    for device in devices:
        unit.emit(
            events.DeviceCreated(
                occurred_at=unit.now, device_id=device.id, node_id=node.id, name=device.name
            )
        )
    unit.effects.provisions.extend((node.id, d.id) for d in devices)
    return devices


async def mark_devices_ready(
    uow: UnitOfWork, device_ids: list[uuid.UUID], source: DeviceStatus, *, now: datetime
) -> list[Device]:
    """Provisioning or a reset finished: the devices become available (once)."""
    kind = events.DeviceProvisioned if source is DeviceStatus.PROVISIONING else events.DeviceReady
    async with uow:
        ready = await uow.devices.transition(device_ids, source, DeviceStatus.AVAILABLE, now)
        await uow.outbox.add(
            [kind(occurred_at=now, device_id=d.id, node_id=d.node_id) for d in ready]
        )
        await uow.commit()
    return ready


async def devices_awaiting_work(uow: UnitOfWork, node_ids: list[uuid.UUID]) -> list[Device]:
    """Devices of these nodes still provisioning or resetting (for reconciliation)."""
    async with uow:
        return await uow.devices.in_status(
            node_ids, [DeviceStatus.PROVISIONING, DeviceStatus.RESETTING]
        )


async def registered_node_ids(uow: UnitOfWork) -> list[uuid.UUID]:
    async with uow:
        return await uow.nodes.ids()


async def heartbeat_nodes(uow: UnitOfWork, node_ids: list[uuid.UUID], *, now: datetime) -> None:
    async with uow:
        await uow.nodes.heartbeat(node_ids, now)
        await uow.commit()


class FleetTotal:
    """How many devices of the whole fleet are available, remembered for ``ttl`` seconds: the
    unfiltered listing, which many clients poll, counts the fleet once a second instead of
    once a call (its devices are always read fresh; only ``total`` may lag them that long).
    A listing filtered by labels is always counted."""

    def __init__(self, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._kept: tuple[float, int] | None = None

    def get(self) -> int | None:
        kept = self._kept
        return kept[1] if kept is not None and kept[0] > self._clock() else None

    def keep(self, total: int) -> None:
        self._kept = (self._clock() + self._ttl, total)

    def forget(self) -> None:
        self._kept = None


async def list_available_devices(
    uow: UnitOfWork,
    labels: dict[str, str],
    limit: int,
    cursor: str | None,
    fleet_total: FleetTotal | None = None,
) -> Page[Device]:
    remembered = None if labels or fleet_total is None else fleet_total
    known = remembered.get() if remembered is not None else None
    async with uow:
        page = await uow.devices.list_available(labels, limit, cursor, known)
    if remembered is not None and known is None:
        remembered.keep(page.total)
    return page


async def get_devices(uow: UnitOfWork, device_ids: list[uuid.UUID]) -> dict[uuid.UUID, Device]:
    async with uow:
        return {d.id: d for d in await uow.devices.get_many(device_ids)}
