"""Batch use cases: allocate many devices with one placement plan (each on its own or all
or none), and release, extend or look up many allocations, each item answered on its own.

Every item is scoped by the caller's rights like its single counterpart: an allocation the
caller may not touch is reported as not found, and the other items go ahead.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from scheduler.domain.allocations import Allocation, lease_window
from scheduler.domain.errors import (
    Conflict,
    InfrastructureError,
    NoCapacity,
    NotFound,
    SchedulerError,
)
from scheduler.domain.identity import Principal, acting_user, scope_of
from scheduler.domain.resources import DeviceRequirements
from scheduler.services.allocations import release_allocation
from scheduler.services.command_path import Unit
from scheduler.services.commands import (
    AllocateDevice,
    AllocationFilter,
    ExtendAllocation,
    Extended,
    Grant,
    Page,
    PendingLease,
    Release,
    ReleaseAllocation,
)
from scheduler.services.extensions import extend_allocation
from scheduler.services.leases import place_lease
from scheduler.services.planning import PlanRequest, plan, read_fleet
from scheduler.services.ports import UnitOfWork

T = TypeVar("T")
K = TypeVar("K")

#: Time the batch's placement plan may take.
BATCH_SOLVE_SECONDS = 0.5
#: Allocations listed per user by a batch query (the page's ``total`` and cursor say more).
QUERY_LIMIT_PER_USER = 100


class BatchAborted(Conflict):
    """Another item of the all-or-nothing batch could not be granted, so none was."""

    code = "batch_aborted"


class BatchNotPlaceable(Conflict):
    """The all-or-nothing batch cannot be granted as a whole; nothing was allocated."""

    code = "batch_not_placeable"


@dataclass(frozen=True, slots=True)
class AllocateBatch:
    """Devices for many requests. ``atomic``: all or none in one transaction.
    ``anti_affinity``: every granted device on a node of its own."""

    items: tuple[AllocateDevice, ...]
    atomic: bool = False
    anti_affinity: bool = False


@dataclass(frozen=True, slots=True)
class ReleaseBatch:
    allocation_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True, slots=True)
class ExtendBatch:
    allocation_ids: tuple[uuid.UUID, ...]
    additional_minutes: int


@dataclass(frozen=True, slots=True)
class ItemOutcome(Generic[T]):
    """The answer to one item of a batch: its value, or the error that refused it."""

    index: int
    value: T | None = None
    error: SchedulerError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class BatchOutcomes(Generic[T]):
    """Every item's answer, in the batch's order; ``atomic``: all or none was granted."""

    items: list[ItemOutcome[T]]
    atomic: bool = False

    @property
    def refused(self) -> bool:
        """An all-or-nothing batch that granted nothing."""
        return self.atomic and any(o.error is not None for o in self.items)


@dataclass(frozen=True, slots=True)
class _Item:
    index: int
    lease: PendingLease
    requirements: DeviceRequirements


@dataclass(frozen=True, slots=True)
class _Plan:
    """The batch's placement plan: each placed item's device, and why the others are not."""

    devices: Mapping[int, uuid.UUID]
    reasons: Mapping[int, str]
    spread: bool


def _items(
    principal: Principal, command: AllocateBatch, now: datetime
) -> tuple[list[_Item], dict[int, SchedulerError]]:
    """Each item as a pending lease, or the error that refuses it before any placement."""
    items, refused = [], {}
    for index, item in enumerate(command.items):
        try:
            user_id = acting_user(principal, item.user_id)
            allocated_at, expires_at = lease_window(now, item.duration_minutes)
        except SchedulerError as error:
            refused[index] = error
            continue
        lease = PendingLease(uuid.uuid4(), principal.tenant_id, user_id, allocated_at, expires_at)
        items.append(_Item(index, lease, item.requirements))
    return items, refused


async def _plan(unit: Unit, items: Sequence[_Item], *, spread: bool) -> _Plan:
    solver = unit.config.solver
    if solver is None or not items:
        return _Plan({}, {}, spread)
    group = f"batch-{uuid.uuid4().hex}" if spread else None
    tenant = str(unit.principal.tenant_id)
    chosen = await plan(
        await read_fleet(unit.uow),
        [PlanRequest(i.index, i.requirements, 1, tenant, group) for i in items],
        solver=solver,
        max_time_seconds=BATCH_SOLVE_SECONDS,
    )
    return _Plan(
        {_index(k): uuid.UUID(str(v)) for k, v in chosen.assignments.items()},
        {_index(k): u.reason for k, u in chosen.unplaced.items()},
        spread,
    )


def _index(request_id: Hashable) -> int:
    assert isinstance(request_id, int)
    return request_id


async def _place(unit: Unit, item: _Item, plan: _Plan, used_nodes: set[uuid.UUID]) -> Grant:
    """Inside the unit's transaction: the item's planned device first, else the best fit;
    with anti-affinity only on a node no other item of the batch has.

    Raises:
        NoCapacity, QuotaExceeded: as ``place_lease``, or no node of its own is left.
    """
    planned = plan.devices.get(item.index)
    if plan.spread and planned is None:
        raise NoCapacity(plan.reasons.get(item.index) or "no device on a node of its own")
    grant = await place_lease(unit, item.lease, item.requirements, [planned] if planned else [])
    if plan.spread:
        if grant.device.node_id in used_nodes:
            raise NoCapacity("no available device on a node this batch does not use yet")
        used_nodes.add(grant.device.node_id)
    return grant


class _Undo(Exception):
    """Raised inside a savepoint to roll an all-or-nothing batch back."""


async def allocate_batch(command: AllocateBatch, unit: Unit) -> BatchOutcomes[Grant]:
    """Lease a device for every item, placed by one plan over the whole batch: each item
    claims its planned device first and falls back to the best fit (items the plan placed
    go first, so the items it could not place do not take their devices).

    Every item runs in a savepoint of the unit's one transaction: a refused item rolls back
    alone and the others go on. Atomic: when any item is refused, the whole batch rolls
    back and every item fails, the refused ones with their error, the others
    ``BatchAborted`` (the outcome is kept for the key all the same).
    """
    items, refused = _items(unit.principal, command, unit.now)
    if command.atomic and refused:
        return _aborted(len(command.items), refused)
    plan_ = await _plan(unit, items, spread=command.anti_affinity)
    ordered = sorted(items, key=lambda i: (i.index not in plan_.devices, i.index))
    grants: dict[int, Grant] = {}
    used_nodes: set[uuid.UUID] = set()
    granted_events = len(unit.events)
    try:
        async with unit.uow.savepoint():
            for item in ordered:
                try:
                    async with unit.uow.savepoint():
                        grants[item.index] = await _place(unit, item, plan_, used_nodes)
                except InfrastructureError:
                    raise
                except SchedulerError as error:
                    refused[item.index] = error
            if command.atomic and refused:
                raise _Undo()
    except _Undo:
        del unit.events[granted_events:]  # nothing was granted
        return _aborted(len(command.items), refused)
    return BatchOutcomes(
        [ItemOutcome(i, grants.get(i), refused.get(i)) for i in range(len(command.items))],
        command.atomic,
    )


def _aborted(count: int, refused: Mapping[int, SchedulerError]) -> BatchOutcomes[Grant]:
    return BatchOutcomes(
        [ItemOutcome(i, None, refused.get(i) or BatchAborted()) for i in range(count)], True
    )


async def _each(
    unit: Unit, keys: Sequence[K], run: Callable[[K], Awaitable[T]]
) -> list[ItemOutcome[T]]:
    """``run`` on every key in turn, each in a savepoint of the unit's transaction; a
    refusal answers its item (its work rolled back) and the others go on."""
    outcomes: list[ItemOutcome[T]] = []
    for index, key in enumerate(keys):
        emitted = len(unit.events)
        try:
            async with unit.uow.savepoint():
                outcomes.append(ItemOutcome(index, await run(key)))
        except InfrastructureError:
            raise
        except SchedulerError as error:
            del unit.events[emitted:]
            outcomes.append(ItemOutcome(index, None, error))
    return outcomes


async def release_batch(command: ReleaseBatch, unit: Unit) -> BatchOutcomes[Release]:
    """End every listed lease the caller may end (one usage record each); the others are
    answered ``allocation_not_found``. The devices are reset once the unit commits."""

    async def release(allocation_id: uuid.UUID) -> Release:
        return await release_allocation(ReleaseAllocation(allocation_id), unit)

    return BatchOutcomes(await _each(unit, command.allocation_ids, release))


async def extend_batch(command: ExtendBatch, unit: Unit) -> BatchOutcomes[Extended]:
    """Extend every listed lease by the same minutes, each within its tenant's limits."""

    async def extend(allocation_id: uuid.UUID) -> Extended:
        return await extend_allocation(
            ExtendAllocation(allocation_id, command.additional_minutes), unit
        )

    return BatchOutcomes(await _each(unit, command.allocation_ids, extend))


async def query_batch(
    uow: UnitOfWork,
    principal: Principal,
    user_ids: Sequence[str],
    *,
    active_only: bool,
) -> list[ItemOutcome[Page[Allocation]]]:
    """Each user's allocations the caller may see, newest first (as ``GET /allocations``);
    a user whose allocations the caller may not see at all is reported as not found."""
    scope = scope_of(principal)
    status = "active" if active_only else None
    outcomes: list[ItemOutcome[Page[Allocation]]] = []
    async with uow:
        for index, user_id in enumerate(user_ids):
            if scope.user_id is not None and user_id != scope.user_id:
                outcomes.append(ItemOutcome(index, None, NotFound("no such user is visible")))
                continue
            query = AllocationFilter(user_id, status, QUERY_LIMIT_PER_USER)
            outcomes.append(ItemOutcome(index, await uow.allocations.list(scope, query)))
    return outcomes
