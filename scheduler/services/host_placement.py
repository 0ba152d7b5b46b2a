"""New devices on the hosts where they fit best (issue 13 §1): where one would go (the
original platform's ``POST /scheduler/schedule``), and provisioning many at once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

from placement.host_choice import Host, HostChoice, rank_hosts, why_none_fits
from placement.problem import Strategy
from scheduler.domain.errors import DeviceNotFound, Forbidden, NoCapacity
from scheduler.domain.fleet import Device, NodeStatus
from scheduler.domain.identity import Principal, Role
from scheduler.domain.resources import Resources, Toleration
from scheduler.domain.strategies import strategy_type
from scheduler.services.command_path import Unit
from scheduler.services.commands import (
    AddDevices,
    PlannedHost,
    ProvisionDevices,
    ProvisionedDevices,
)
from scheduler.services.fleet import create_devices
from scheduler.services.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class HostPlacementQuery:
    spec: Resources
    labels: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    preferred_node_id: uuid.UUID | None = None
    #: None: the active strategy's type.
    strategy: str | None = None


async def best_host(
    uow: UnitOfWork, principal: Principal, query: HostPlacementQuery
) -> tuple[HostChoice, Strategy]:
    """Raises:
    Forbidden: the caller is neither an admin nor a service.
    InvalidRequest: no such strategy type.
    NoCapacity: no host fits (the reasons, counted, in its detail).
    """
    _require_operator(principal)
    async with uow:
        hosts, strategy = await _hosts(uow, query.tolerations, query.strategy)
    spec = _vector(query.spec)
    ranked = rank_hosts(
        hosts, spec, strategy, labels=query.labels, preferred=query.preferred_node_id
    )
    if not ranked:
        why = why_none_fits(hosts, spec, query.labels)
        raise NoCapacity(f"no host fits a device of {query.spec}: {why}")
    return ranked[0], strategy


async def provision_devices(command: ProvisionDevices, unit: Unit) -> ProvisionedDevices:
    """Plan ``count`` devices one by one on the hosts where each fits best (each placement
    counted before the next), then create them (unless a dry run) as ``add_devices`` does,
    each host's row locked and its room checked again: two provisionings racing for a
    host's last room never overfill it (the later one fails whole).

    Raises:
        Forbidden: the caller is neither an admin nor a service.
        InvalidRequest: no such strategy type.
        NoCapacity: fewer than ``count`` fit and ``atomic`` (or none fits).
        NodeCapacityExceeded: a concurrent creation took a planned host's room.
        NodeStateConflict: a planned host stopped taking devices (drain, maintenance, cordon)
            before its row was locked.
    """
    _require_operator(unit.principal)
    hosts, strategy = await _hosts(unit.uow, command.tolerations, command.strategy)
    spec = _vector(command.resources)
    plan: dict[uuid.UUID, PlannedHost] = {}
    for _ in range(command.count):
        ranked = rank_hosts(
            hosts, spec, strategy, labels=command.host_labels, preferred=command.preferred_node_id
        )
        if not ranked:
            break
        chosen = ranked[0].host
        first = plan.get(chosen.node_id)
        plan[chosen.node_id] = (
            replace(first, count=first.count + 1)
            if first
            else PlannedHost(chosen.node_id, chosen.name, 1, ranked[0].score, ranked[0].reason)
        )
        used = chosen.used
        grown = replace(
            chosen,
            used=(used[0] + spec[0], used[1] + spec[1], used[2] + spec[2]),
            devices=chosen.devices + 1,
        )
        hosts = [grown if h is chosen else h for h in hosts]
    placed = sum(p.count for p in plan.values())
    if placed == 0 or (placed < command.count and command.atomic):
        why = why_none_fits(hosts, spec, command.host_labels)
        raise NoCapacity(f"{placed} of {command.count} devices fit: {why}")
    devices: list[Device] = []
    if not command.dry_run:
        # Hosts locked in one order (by id): concurrent provisionings do not deadlock.
        for planned in sorted(plan.values(), key=lambda p: p.node_id):
            add = AddDevices(
                planned.node_id,
                planned.count,
                command.resources,
                command.android_version,
                only_if_ready=True,
            )
            devices += await create_devices(unit, add)
    return ProvisionedDevices(command.count, list(plan.values()), devices)


async def spec_of_device(uow: UnitOfWork, principal: Principal, device_id: uuid.UUID) -> Resources:
    """What a device of the fleet is made of: the spec for "where would one like it go".

    Raises:
        Forbidden: the caller is neither an admin nor a service.
        DeviceNotFound: no such device.
    """
    _require_operator(principal)
    async with uow:
        found = await uow.devices.get_many([device_id])
    if not found:
        raise DeviceNotFound()
    return found[0].spec.resources


def _require_operator(principal: Principal) -> None:
    if principal.role not in (Role.ADMIN, Role.SERVICE):
        raise Forbidden("only admins and services place new devices")


def _vector(resources: Resources) -> tuple[float, float, float]:
    return (resources.cpu_cores, resources.memory_mb, resources.storage_mb)


async def _hosts(
    uow: UnitOfWork, tolerations: tuple[Toleration, ...], strategy: str | None
) -> tuple[list[Host], Strategy]:
    """Every node as a host for new devices (its devices' specs summed), and the strategy
    (``strategy``, else the active one's type)."""
    nodes = await uow.nodes.list()
    usage = await uow.nodes.usage_by_node()
    chosen = strategy_type(strategy or await uow.config.strategy())
    hosts = []
    for node in nodes:
        used, devices = usage.get(node.id, (Resources(0.0, 0, 0), 0))
        hosts.append(
            Host(
                node.id,
                node.name,
                _vector(node.capacity.allocatable),
                _vector(used),
                node.capacity.max_devices,
                devices,
                node.labels,
                node.status is NodeStatus.READY,
                not all(t.is_tolerated_by(tolerations) for t in node.taints),
            )
        )
    return hosts, chosen
