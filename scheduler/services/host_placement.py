"""Where a new device of a given spec would go (issue 13 §1, the original platform's
``POST /scheduler/schedule``): the best host by the strategy, with its score and reason."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from placement.host_choice import Host, HostChoice, rank_hosts, why_none_fits
from placement.problem import Strategy
from scheduler.domain.errors import Forbidden, NoCapacity
from scheduler.domain.fleet import NodeStatus
from scheduler.domain.identity import Principal, Role
from scheduler.domain.resources import Resources, Toleration
from scheduler.domain.strategies import strategy_type
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
    if principal.role not in (Role.ADMIN, Role.SERVICE):
        raise Forbidden("only admins and services place new devices")
    async with uow:
        nodes = await uow.nodes.list()
        usage = await uow.nodes.usage_by_node()
        strategy = strategy_type(query.strategy or await uow.config.strategy())
    hosts = []
    for node in nodes:
        used, devices = usage.get(node.id, (Resources(0.0, 0, 0), 0))
        capacity = node.capacity.resources
        hosts.append(
            Host(
                node.id,
                node.name,
                (capacity.cpu_cores, capacity.memory_mb, capacity.storage_mb),
                (used.cpu_cores, used.memory_mb, used.storage_mb),
                node.capacity.max_devices,
                devices,
                node.labels,
                node.status is NodeStatus.READY,
                not all(t.is_tolerated_by(query.tolerations) for t in node.taints),
            )
        )
    spec = (query.spec.cpu_cores, query.spec.memory_mb, query.spec.storage_mb)
    ranked = rank_hosts(
        hosts, spec, strategy, labels=query.labels, preferred=query.preferred_node_id
    )
    if not ranked:
        why = why_none_fits(hosts, spec, query.labels)
        raise NoCapacity(f"no host fits a device of {query.spec}: {why}")
    return ranked[0], strategy
