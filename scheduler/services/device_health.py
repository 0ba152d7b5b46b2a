"""Failures of phones and hosts: a device reported failed is quarantined and its lease moved
to a device that serves it as well (or revoked, billed to the second); a node whose agent
goes silent goes offline and its leases move the same way; a recovered device is reset
before it is leased again, and a node heard from again gets its status back."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from scheduler.domain import events
from scheduler.domain.allocations import Allocation, AllocationStatus
from scheduler.domain.errors import DeviceNotFound, Forbidden, InvalidRequest, NodeNotFound
from scheduler.domain.fleet import Device, DeviceStatus
from scheduler.domain.identity import Principal, Role, require_admin
from scheduler.services.command_path import Unit
from scheduler.services.leases import end_lease
from scheduler.services.ports import DeviceLifecycle, UnitOfWork
from scheduler.services.reservations import move_bookings_off

#: What a report may say of a device.
REPORTED = ("failed", "recovered")


@dataclass(frozen=True, slots=True)
class ReportDevice:
    device_id: uuid.UUID
    status: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Relocation:
    """What became of a lease on a failed device or an offline node: moved to ``moved_to``,
    or revoked (``moved_to`` is ``None``)."""

    allocation_id: uuid.UUID
    moved_to: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class DeviceReported:
    device_id: uuid.UUID
    status: str
    leases: tuple[Relocation, ...] = ()


async def report_device(command: ReportDevice, unit: Unit) -> DeviceReported:
    """Record what an admin, a service or a node agent learned of a device.

    Raises:
        Forbidden: the caller is a user.
        InvalidRequest: the status is neither ``failed`` nor ``recovered``.
        DeviceNotFound: no such device.
    """
    if unit.principal.role is Role.USER:
        raise Forbidden("reporting a device needs an admin or a service token")
    if command.status not in REPORTED:
        raise InvalidRequest(f"a report's status is one of: {', '.join(REPORTED)}")
    device = await unit.uow.devices.get(command.device_id)
    if device is None:
        raise DeviceNotFound()
    reason = command.reason or f"reported {command.status}"
    if command.status == "failed":
        return await fail_device(unit, device, reason)
    return await recover_device(unit, device, reason)


async def fail_device(unit: Unit, device: Device, reason: str) -> DeviceReported:
    """Quarantine ``device`` and relocate its lease; a device already failed (or retired)
    stays as it is."""
    uow = unit.uow
    leases = await uow.allocations.lock_active_on(device_ids=[device.id])
    failed = await uow.devices.mark_failed(device.id, unit.now)
    if failed is None:
        return DeviceReported(device.id, device.status.value)
    unit.emit(
        events.DeviceFailed(
            occurred_at=unit.now, device_id=device.id, node_id=device.node_id, reason=reason
        )
    )
    moved = [await relocate(unit, lease, device, "device_failed") for lease in leases]
    await move_bookings_off(unit, device.id, "device_failed")
    return DeviceReported(device.id, DeviceStatus.FAILED.value, tuple(moved))


async def recover_device(unit: Unit, device: Device, reason: str) -> DeviceReported:
    """A failed device is reset (quarantine ends only when that passes); any other is left
    as it is."""
    (recovered,) = await unit.uow.devices.transition(
        [device.id], DeviceStatus.FAILED, DeviceStatus.RESETTING, unit.now
    ) or (None,)
    if recovered is None:
        return DeviceReported(device.id, device.status.value)
    unit.emit(
        events.DeviceRecovered(
            occurred_at=unit.now, device_id=device.id, node_id=device.node_id, reason=reason
        ),
        events.DeviceResetStarted(
            occurred_at=unit.now, device_id=device.id, node_id=device.node_id
        ),
    )
    unit.effects.reset(device.node_id, device.id)
    return DeviceReported(device.id, DeviceStatus.RESETTING.value)


async def relocate(
    unit: Unit,
    lease: Allocation,
    device: Device,
    reason: str,
    *,
    other_node: bool = False,
    revoke_if_stuck: bool = True,
    preferred_node: uuid.UUID | None = None,
    only: uuid.UUID | None = None,
) -> Relocation:
    """Move ``lease`` (held) off ``device`` to one that serves it as well (on another node
    if ``other_node``; to ``only`` if given), or, if none is free, revoke it (unless not
    ``revoke_if_stuck``: it stays). A device left behind that is not failed is reset."""
    uow, now = unit.uow, unit.now
    node = await uow.nodes.get(device.node_id)
    replacement = await uow.devices.claim_replacement(
        device,
        node.labels if node else {},
        lease.expires_at,
        now,
        other_node=other_node,
        preferred_node=preferred_node,
        only=only,
    )
    if replacement is None:
        if revoke_if_stuck:
            await end_lease(unit, lease, AllocationStatus.REVOKED, reason, device.node_id)
        return Relocation(lease.id, None)
    await uow.allocations.move(lease.id, device.id, replacement.id)
    await uow.devices.send_transition(
        [device.id], DeviceStatus.ALLOCATED, DeviceStatus.RESETTING, now
    )
    unit.effects.reset(device.node_id, device.id)  # reset if it moved (not if failed)
    unit.emit(
        events.AllocationMoved(
            occurred_at=now,
            allocation_id=lease.id,
            tenant_id=lease.tenant_id,
            user_id=lease.user_id,
            from_device_id=device.id,
            to_device_id=replacement.id,
            to_node_id=replacement.node_id,
            from_adb=f"{device.adb_host}:{device.adb_port}",
            to_adb=f"{replacement.adb_host}:{replacement.adb_port}",
            reason=reason,
        )
    )
    return Relocation(lease.id, replacement.id)


async def move_off_their_nodes(unit: Unit, leases: Sequence[Allocation], reason: str) -> None:
    """Relocate ``leases`` (held) to devices of other nodes (or revoke them)."""
    devices = {d.id: d for d in await unit.uow.devices.get_many([a.device_id for a in leases])}
    for lease in leases:
        await relocate(unit, lease, devices[lease.device_id], reason, other_node=True)


async def check_node_heartbeats(unit: Unit, offline_after: timedelta) -> tuple[int, int]:
    """Nodes silent for ``offline_after`` go offline, their leases relocated; offline nodes
    heard from within it come back. How many went offline and came back."""
    uow, now = unit.uow, unit.now
    gone = await uow.nodes.mark_offline(now - offline_after)
    for node in gone:
        unit.emit(
            events.NodeOffline(
                occurred_at=now, node_id=node.id, last_heartbeat_at=node.last_heartbeat_at
            )
        )
    if gone:
        leases = await uow.allocations.lock_active_on(node_ids=[n.id for n in gone])
        await move_off_their_nodes(unit, leases, "node_offline")
    back = await uow.nodes.mark_online(now - offline_after)
    for node in back:
        unit.emit(events.NodeOnline(occurred_at=now, node_id=node.id, status=node.status.value))
    if back:
        unit.effects.wake()  # their devices take leases again
    return len(gone), len(back)


#: What a simulation may do to a device or a node.
SIMULATED = ("fail", "recover")


async def simulate_failure(
    uow: UnitOfWork,
    lifecycle: DeviceLifecycle,
    principal: Principal,
    *,
    action: str,
    node_id: uuid.UUID | None = None,
    device_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Fail or recover a device (its agent reports it at once) or a node (its heartbeats
    stop; the housekeeper takes it offline) through the simulated driver, for tests and
    demos. The node acted on.

    Raises:
        Forbidden: the caller is not an admin.
        InvalidRequest: an unknown action.
        NodeNotFound, DeviceNotFound: no such node or device.
        NotSimulated: the driver drives real phones.
    """
    require_admin(principal)
    if action not in SIMULATED:
        raise InvalidRequest(f"the action is one of: {', '.join(SIMULATED)}")
    async with uow:
        if device_id is not None:
            device = await uow.devices.get(device_id)
            if device is None:
                raise DeviceNotFound()
            node_id = device.node_id
        elif node_id is None or await uow.nodes.get(node_id) is None:
            raise NodeNotFound()
    await lifecycle.simulate(node_id, device_id, action)
    return node_id
