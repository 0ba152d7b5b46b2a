"""Operating the fleet's hosts and phones: maintenance, drains (leases moved now or at a
deadline), edits within what the devices use, removal of nodes and retirement of devices
once nothing holds them, and moving one device's lease on request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

from scheduler.domain import events
from scheduler.domain.errors import (
    AllocationNotFound,
    DeviceInUse,
    DeviceNotFound,
    NoCapacity,
    NodeCapacityExceeded,
    NodeInUse,
    NodeNotFound,
    NodeStateConflict,
)
from scheduler.domain.fleet import (
    Device,
    DeviceStatus,
    Drain,
    DrainMode,
    Node,
    NodeCapacity,
    NodeStatus,
)
from scheduler.domain.identity import require_admin
from scheduler.domain.resources import Resources, Taint
from scheduler.services.command_path import Unit
from scheduler.services.device_health import Relocation, move_off_their_nodes, relocate

#: Statuses a node may go into maintenance or start a drain from.
OPERATIONAL = frozenset({NodeStatus.READY, NodeStatus.CORDONED, NodeStatus.MAINTENANCE})


@dataclass(frozen=True, slots=True)
class SetMaintenance:
    node_id: uuid.UUID
    enable: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class DrainNode:
    node_id: uuid.UUID
    mode: str = DrainMode.WAIT.value
    deadline_minutes: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateNode:
    """Change what is given (``None``: unchanged)."""

    node_id: uuid.UUID
    name: str | None = None
    labels: dict[str, str] | None = None
    taints: tuple[Taint, ...] | None = None
    resources: Resources | None = None
    max_devices: int | None = None
    cpu_allocation_rate: float | None = None
    memory_allocation_rate: float | None = None


@dataclass(frozen=True, slots=True)
class RemoveNode:
    node_id: uuid.UUID
    drain: bool = False


@dataclass(frozen=True, slots=True)
class UpdateDevice:
    device_id: uuid.UUID
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class RetireDevice:
    device_id: uuid.UUID
    drain: bool = False


@dataclass(frozen=True, slots=True)
class RescheduleLease:
    device_id: uuid.UUID
    reason: str | None = None
    #: Move it to a device of this node if one there serves it.
    preferred_node_id: uuid.UUID | None = None


async def set_maintenance(command: SetMaintenance, unit: Unit) -> Node:
    """Maintenance: no new leases on the node; leases running on it go on to their end.

    Raises:
        Forbidden: the caller is not an admin.
        NodeNotFound: no such node.
        NodeStateConflict: it is draining, drained, offline or removed.
    """
    node = await _held_node(unit, command.node_id)
    if node.status not in OPERATIONAL:
        raise NodeStateConflict(f"a node {node.status.value} cannot change its maintenance")
    status = NodeStatus.MAINTENANCE if command.enable else NodeStatus.READY
    changed = await unit.uow.nodes.set_state(node.id, status, command.reason, None)
    assert changed is not None
    unit.emit(
        events.NodeMaintenance(
            occurred_at=unit.now, node_id=node.id, enabled=command.enable, reason=command.reason
        )
    )
    if not command.enable:
        unit.effects.wake()  # its free devices may serve waiters
    return changed


async def drain_node(command: DrainNode, unit: Unit) -> Node:
    """Start a drain; ``migrate`` moves every lease now (as for a failure), ``wait`` lets
    them end and the housekeeper moves what is left at the deadline.

    Raises:
        Forbidden: the caller is not an admin.
        NodeNotFound: no such node.
        NodeStateConflict: it is already draining, or offline or removed.
    """
    node = await _held_node(unit, command.node_id)
    if node.status not in OPERATIONAL | {NodeStatus.DRAINED}:
        raise NodeStateConflict(f"a node {node.status.value} cannot start a drain")
    return await _start_drain(unit, node, command, remove=False)


async def _start_drain(unit: Unit, node: Node, command: DrainNode, *, remove: bool) -> Node:
    mode = DrainMode(command.mode)
    deadline = (
        unit.now + timedelta(minutes=command.deadline_minutes)
        if command.deadline_minutes is not None
        else None
    )
    drain = Drain(mode, deadline, remove)
    draining = await unit.uow.nodes.set_state(node.id, NodeStatus.DRAINING, command.reason, drain)
    assert draining is not None
    unit.emit(
        events.NodeDraining(
            occurred_at=unit.now,
            node_id=node.id,
            mode=mode.value,
            deadline=deadline,
            remove_when_drained=remove,
        )
    )
    return await step_drain(unit, draining)


async def step_drain(unit: Unit, node: Node) -> Node:
    """One step of a node's drain (held): move its leases if the mode or the deadline says
    so; once none is left, it is drained (or removed, if asked)."""
    assert node.drain is not None
    uow = unit.uow
    due = node.drain.mode is DrainMode.MIGRATE or (
        node.drain.deadline is not None and node.drain.deadline <= unit.now
    )
    leases = await uow.allocations.lock_active_on(node_ids=[node.id])
    if leases and due:
        await move_off_their_nodes(unit, leases, "node_drained")
        leases = []
    if leases:
        return node
    unit.emit(events.NodeDrained(occurred_at=unit.now, node_id=node.id))
    if node.drain.remove_when_drained:
        return await _remove(unit, node)
    drained = await uow.nodes.set_state(node.id, NodeStatus.DRAINED, node.status_reason, None)
    assert drained is not None
    return drained


async def step_drains(unit: Unit) -> int:
    """The housekeeper's pass over the nodes being drained; how many finished."""
    finished = 0
    for node in await unit.uow.nodes.draining():
        finished += (await step_drain(unit, node)).status is not NodeStatus.DRAINING
    return finished


async def update_node(command: UpdateNode, unit: Unit) -> Node:
    """Raises:
    Forbidden: the caller is not an admin.
    NodeNotFound: no such node.
    NodeCapacityExceeded: the new capacity (overcommit included) is below what its devices
        use.
    AlreadyExists: another node has that name.
    """
    uow = unit.uow
    node = await _held_node(unit, command.node_id)
    was = node.capacity
    capacity = NodeCapacity(
        command.resources or was.resources,
        command.max_devices if command.max_devices is not None else was.max_devices,
        command.cpu_allocation_rate or was.cpu_allocation_rate,
        command.memory_allocation_rate or was.memory_allocation_rate,
    )
    used, count = await uow.nodes.device_usage(node.id)
    if count > capacity.max_devices or not used.fits_within(capacity.allocatable):
        raise NodeCapacityExceeded(
            f"its {count} devices use {used}; the capacity cannot go below that"
        )
    changed = replace(
        node,
        name=command.name or node.name,
        labels=command.labels if command.labels is not None else node.labels,
        taints=command.taints if command.taints is not None else node.taints,
        capacity=capacity,
    )
    await uow.nodes.update(changed)
    unit.emit(events.NodeUpdated(occurred_at=unit.now, node_id=node.id, name=changed.name))
    unit.effects.wake()  # new labels or capacity may serve waiters
    return changed


async def remove_node(command: RemoveNode, unit: Unit) -> Node:
    """Remove a node nothing holds (its devices retired); with ``drain``, drain it first
    (its leases moved now) and remove it once drained.

    Raises:
        Forbidden: the caller is not an admin.
        NodeNotFound: no such node (or removed already).
        NodeInUse: leases or bookings remain and ``drain`` was not asked.
    """
    node = await _held_node(unit, command.node_id)
    leases, bookings = await unit.uow.nodes.holdings(node.id)
    if bookings:
        raise NodeInUse(f"{bookings} bookings of its devices remain; cancel or move them")
    if leases and not command.drain:
        raise NodeInUse(f"{leases} leases run on it; drain it first (?drain=true)")
    if leases:
        drain = DrainNode(node.id, DrainMode.MIGRATE.value, None, "removal")
        return await _start_drain(unit, node, drain, remove=True)
    return await _remove(unit, node)


async def _remove(unit: Unit, node: Node) -> Node:
    for device_id in await unit.uow.nodes.remove(node.id):
        unit.emit(events.DeviceRetired(occurred_at=unit.now, device_id=device_id, node_id=node.id))
    unit.emit(events.NodeRemoved(occurred_at=unit.now, node_id=node.id, name=node.name))
    return replace(node, status=NodeStatus.REMOVED, drain=None)


async def update_device(command: UpdateDevice, unit: Unit) -> Device:
    """Raises:
    Forbidden: the caller is not an admin.
    DeviceNotFound: no such device (or retired).
    """
    require_admin(unit.principal)
    device = await unit.uow.devices.set_labels(command.device_id, command.labels)
    if device is None:
        raise DeviceNotFound()
    unit.emit(
        events.DeviceUpdated(
            occurred_at=unit.now, device_id=device.id, node_id=device.node_id, labels=command.labels
        )
    )
    unit.effects.wake()
    return device


async def retire_device(command: RetireDevice, unit: Unit) -> Device:
    """Retire a device nothing holds; with ``drain``, its lease is moved first (revoked if
    no twin is free).

    Raises:
        Forbidden: the caller is not an admin.
        DeviceNotFound: no such device (or retired).
        DeviceInUse: it is booked, or leased and ``drain`` was not asked.
    """
    require_admin(unit.principal)
    uow = unit.uow
    device = await uow.devices.get(command.device_id)
    if device is None or device.status is DeviceStatus.RETIRED:
        raise DeviceNotFound()
    leases = await uow.allocations.lock_active_on(device_ids=[device.id])
    _, bookings = await uow.devices.holdings(device.id)
    if bookings:
        raise DeviceInUse(f"{bookings} bookings of it remain; cancel or move them")
    if leases and not command.drain:
        raise DeviceInUse("it is leased; move its lease first (?drain=true)")
    for lease in leases:
        await relocate(unit, lease, device, "device_retired")
    retired = await uow.devices.retire(device.id, unit.now)
    assert retired is not None
    unit.emit(
        events.DeviceRetired(occurred_at=unit.now, device_id=device.id, node_id=device.node_id)
    )
    return retired


async def reschedule_lease(command: RescheduleLease, unit: Unit) -> Relocation:
    """Move the lease on a device to a device that serves it as well, now; unlike a
    failure, a lease that finds no such device stays where it is.

    Raises:
        Forbidden: the caller is not an admin.
        DeviceNotFound: no such device.
        AllocationNotFound: nothing is leased on it.
        NoCapacity: no device could take the lease.
    """
    require_admin(unit.principal)
    uow = unit.uow
    device = await uow.devices.get(command.device_id)
    if device is None:
        raise DeviceNotFound()
    leases = await uow.allocations.lock_active_on(device_ids=[device.id])
    if not leases:
        raise AllocationNotFound("no lease runs on that device")
    moved = await relocate(
        unit,
        leases[0],
        device,
        command.reason or "rescheduled",
        revoke_if_stuck=False,
        preferred_node=command.preferred_node_id,
    )
    if moved.moved_to is None:
        raise NoCapacity("no available device serves the lease as well; it stays")
    return moved


async def _held_node(unit: Unit, node_id: uuid.UUID) -> Node:
    require_admin(unit.principal)
    node = await unit.uow.nodes.get(node_id, lock=True)
    if node is None or node.status is NodeStatus.REMOVED:
        raise NodeNotFound()
    return node
