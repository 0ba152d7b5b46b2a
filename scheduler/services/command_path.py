"""The one path every state change takes: ``handle(command, principal, idempotency_key)``.

In one transaction it claims the idempotency key, runs the command's handler, stores the
typed outcome on the key, writes the handler's events to the outbox, and commits; only then
does it hand the effects the handler collected (devices to reset or provision, a queue to
wake) to the ``DeviceLifecycle`` and ``QueueDispatcher`` ports. A retry with the key gets the
stored outcome back: the same result, or the same refusal. Nothing that committed can run
twice, and nothing runs half: a crash before the commit leaves no trace (the retry runs it
afresh), a crash after it leaves the outcome for the retry.

A refusal (a ``SchedulerError`` of the request's own making) rolls the work back and is kept
on the key in a transaction of its own; refusals that ask the client to come back (a full
queue, a concurrent update, an outage) are not kept, so a retry runs again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, get_origin

from scheduler.domain import codec
from scheduler.domain.errors import (
    ClaimContended,
    ConcurrentUpdate,
    IdempotencyKeyReused,
    InfrastructureError,
    QueueFull,
    SchedulerError,
)
from scheduler.domain.events import DomainEvent
from scheduler.domain.identity import SYSTEM, Principal
from scheduler.domain.queueing import QueueLimits, QueuePolicy
from scheduler.domain.reservations import BookingRules
from scheduler.services.planning import PlacementSolver
from scheduler.services.ports import (
    DeviceLifecycle,
    QueueDispatcher,
    StoredOutcome,
    UnitOfWork,
    UnitOfWorkFactory,
)

logger = logging.getLogger(__name__)

C = TypeVar("C")
R = TypeVar("R")

#: Refusals a retry should run again rather than be told again.
TRANSIENT = (QueueFull, ConcurrentUpdate, InfrastructureError)


@dataclass
class Effects:
    """What a committed command asks of the world outside the database."""

    resets: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)
    provisions: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)
    #: Nodes whose agent must be running (a node just registered), with their hosts.
    agents: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    wake_queue: bool = False
    new_entries: bool = False
    #: The wake is for these tenants' waiters only (quota freed); empty: for any waiter.
    tenants: set[uuid.UUID] = field(default_factory=set)
    for_anyone: bool = False

    def reset(self, node_id: uuid.UUID, device_id: uuid.UUID) -> None:
        self.resets.append((node_id, device_id))

    def start_agent(self, node_id: uuid.UUID, host: str) -> None:
        self.agents.append((node_id, host))

    def wake(self, *, new_entries: bool = False, tenant: uuid.UUID | None = None) -> None:
        """Drain once committed: always for ``new_entries``; for ``tenant``, only if that
        tenant has waiters (its quota freed); else whenever anyone waits."""
        self.wake_queue = True
        self.new_entries = self.new_entries or new_entries
        if tenant is None:
            self.for_anyone = True
        else:
            self.tenants.add(tenant)


def by_node(pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> dict[uuid.UUID, list[uuid.UUID]]:
    grouped: dict[uuid.UUID, list[uuid.UUID]] = {}
    for node_id, device_id in pairs:
        grouped.setdefault(node_id, []).append(device_id)
    return grouped


async def apply_effects(
    effects: Effects, lifecycle: DeviceLifecycle, queue: QueueDispatcher
) -> None:
    """Hand committed effects to the ports: the agents to start, one reset and one
    provisioning request per node (provisioning is awaited), then one wake of the queue."""
    for node_id, host in effects.agents:
        lifecycle.start_agent(node_id, host)
    for node_id, device_ids in by_node(effects.resets).items():
        lifecycle.request_reset(node_id, device_ids)
    for node_id, device_ids in by_node(effects.provisions).items():
        await lifecycle.provision(node_id, device_ids)
    if effects.wake_queue:
        tenants = () if effects.for_anyone else tuple(effects.tenants)
        queue.wake(effects.new_entries, tenants=tenants)


@dataclass(frozen=True)
class CommandConfig:
    """What handlers decide with besides the database: the settings of the rules."""

    queue_policy: QueuePolicy
    queue_limits: QueueLimits
    booking_rules: BookingRules
    reset: timedelta
    default_host: str
    solver: PlacementSolver | None = None
    standing: StandingRules = field(default_factory=lambda: StandingRules())


@dataclass(frozen=True, slots=True)
class StandingRules:
    """How the platform's quota and billing messages are applied."""

    #: A lowered device limit ends the leases above it after this.
    quota_grace: timedelta = timedelta(minutes=5)
    #: Overdue billing (or enough failed payments) suspends the user after this.
    overdue_grace: timedelta = timedelta(hours=1)
    #: Failed payments in a row that make a suspension due.
    payment_failures: int = 3


@dataclass
class Unit:
    """A handler's view of its command: the open transaction, who asks and when, and what
    to record (events) and do (effects) once it commits. Commands from the API also carry
    the rules' settings and the queue (jobs of the scheduler's own need neither)."""

    uow: UnitOfWork
    principal: Principal
    now: datetime
    settings: CommandConfig | None = None
    dispatcher: QueueDispatcher | None = None
    #: Whether a grant may go with the commit (``GrantAtCommit``): the command path's first
    #: try; a try after it lost its race, and the scheduler's own work, read their grants.
    grant_at_commit: bool = False
    events: list[DomainEvent] = field(default_factory=list)
    effects: Effects = field(default_factory=Effects)

    def emit(self, *events: DomainEvent) -> None:
        self.events.extend(events)

    @property
    def config(self) -> CommandConfig:
        assert self.settings is not None, "this unit runs without the command settings"
        return self.settings

    @property
    def queue(self) -> QueueDispatcher:
        assert self.dispatcher is not None, "this unit runs without the queue"
        return self.dispatcher


async def run_unit(
    uow_factory: UnitOfWorkFactory,
    work: Callable[[Unit], Awaitable[R]],
    *,
    now: datetime,
    principal: Principal = SYSTEM,
    lifecycle: DeviceLifecycle | None = None,
    queue: QueueDispatcher | None = None,
) -> R:
    """Run the scheduler's own ``work`` (a job, a drain's grant) as a unit: one transaction
    that writes its events and commits, then its effects go to the ports (work run without
    them, a drain's grant, has none to apply)."""
    uow = uow_factory()
    unit = Unit(uow, principal, now, dispatcher=queue)
    async with uow:
        result = await work(unit)
        await uow.outbox.add(unit.events)
        await uow.commit()
    if lifecycle is not None and queue is not None:
        await apply_effects(unit.effects, lifecycle, queue)
    elif unit.effects.resets or unit.effects.provisions or unit.effects.agents:
        logger.error("effects of %s dropped: no ports to apply them", work)
    return result


@dataclass(frozen=True)
class GrantAtCommit(Generic[R]):
    """A handler's result that its commit decides: the grant of lease ``lease_id`` was sent
    with the ``COMMIT`` (one round trip), not read before it. ``options`` holds, by each
    device the lease may get, the result and events that go with it; ``granted_device``
    reads, once committed, which one it got."""

    lease_id: uuid.UUID
    options: Mapping[uuid.UUID, tuple[R, Sequence[DomainEvent]]]
    granted_device: Callable[[], Awaitable[uuid.UUID]]


Handler = Callable[[Any, Unit], Awaitable[Any]]


@dataclass(frozen=True)
class Route(Generic[C, R]):
    """A command's handler and the result types its outcome may hold (for replays).

    A handler works in the database only, so its key's claim goes with its first read and a
    replay is told after it ran (rolled back); one that ``acts_outside`` (calls an actor)
    waits for the claim before it runs."""

    handler: Callable[[C, Unit], Awaitable[R]]
    results: tuple[type, ...]
    acts_outside: bool = False


@dataclass(frozen=True, slots=True)
class Handled(Generic[R]):
    """A command's result, and whether it is the replay of a first request's."""

    result: R
    replayed: bool = False


def fingerprint(command: object) -> str:
    """A stable hash of a command: its type and its values in canonical JSON, so a retry
    matches however its body was written. A command carrying what was computed for it (a
    rebalance's plan) is identified by what was asked (its ``asked()``)."""
    asked = command.asked() if hasattr(command, "asked") else command
    body = json.dumps(codec.dump(asked), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{type(command).__name__}\n{body}".encode()).hexdigest()


def _result_record(result: object) -> dict[str, Any]:
    kept = result.without_secrets() if hasattr(result, "without_secrets") else result
    return {"result": {"type": type(kept).__name__, "value": codec.dump(kept)}}


def _refusal_record(error: SchedulerError) -> dict[str, Any]:
    return {"refusal": codec.dump(error)}


class CommandPath:
    """``handle`` for every command of ``routes``; ``after_commit`` is a fault hook for the
    crash tests (``None`` in production)."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        routes: Mapping[type, Route[Any, Any]],
        *,
        config: CommandConfig,
        lifecycle: DeviceLifecycle,
        queue: QueueDispatcher,
        clock: Callable[[], datetime],
        after_commit: Callable[[object], None] | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._routes = routes
        self._config = config
        self._lifecycle = lifecycle
        self._queue = queue
        self._clock = clock
        self._after_commit = after_commit

    async def handle(
        self, command: object, principal: Principal, idempotency_key: str | None = None
    ) -> Handled[Any]:
        """Run ``command`` once per key and return its result.

        The work runs shielded: a caller that goes away (a cancelled request) does not stop
        a command between its commit and its effects.

        Raises:
            SchedulerError: the command's refusal (first or replayed).
            IdempotencyKeyReused: the key was first used for another command.
        """
        task = asyncio.ensure_future(self._handle(command, principal, idempotency_key))
        return await asyncio.shield(task)

    async def _handle(self, command: object, principal: Principal, key: str | None) -> Handled[Any]:
        try:
            return await self._try(command, principal, key, grant_at_commit=True)
        except ClaimContended:
            # Every device its grant was sent for went to others: read the grant this time.
            return await self._try(command, principal, key, grant_at_commit=False)

    async def _try(
        self, command: object, principal: Principal, key: str | None, *, grant_at_commit: bool
    ) -> Handled[Any]:
        route = self._routes[type(command)]
        operation = type(command).__name__
        digest = fingerprint(command) if key is not None else ""
        now = self._clock()
        uow = self._uow_factory()
        unit = Unit(uow, principal, now, self._config, self._queue, grant_at_commit)
        first: StoredOutcome | None = None
        replayed = False
        try:
            async with uow:
                claimed = (
                    await uow.idempotency.claim_sent(principal, key, operation, digest, now)
                    if key is not None
                    else None
                )
                if claimed is not None and route.acts_outside and not await claimed():
                    replayed = True
                else:
                    result = await route.handler(command, unit)
                    if claimed is not None and not await claimed():
                        replayed = True  # a first request's outcome is kept: roll back
                    else:
                        result = await self._commit(unit, principal, key, result)
        except SchedulerError as refusal:
            if key is None or isinstance(refusal, TRANSIENT):
                raise
            first = await self._keep_refusal(principal, key, operation, digest, refusal, now)
            if first is None:
                raise
        if replayed:
            first = await self._kept_outcome(principal, key, operation, digest, now)
        if first is not None:
            return Handled(self._replay(route, first, operation, digest), True)
        if self._after_commit is not None:
            self._after_commit(command)
        await apply_effects(unit.effects, self._lifecycle, self._queue)
        return Handled(result)

    @staticmethod
    async def _commit(unit: Unit, principal: Principal, key: str | None, result: Any) -> Any:
        """Store the outcome on the key and the events in the outbox, and commit; the result
        (the one the commit decided, for a ``GrantAtCommit``)."""
        uow = unit.uow
        if isinstance(result, GrantAtCommit):
            events = {device: events for device, (_, events) in result.options.items()}
            await uow.outbox.add_for_granted(result.lease_id, events)
            if key is not None:
                outcomes = {device: _result_record(r) for device, (r, _) in result.options.items()}
                await uow.idempotency.store_for_granted(principal, key, result.lease_id, outcomes)
        elif key is not None:
            await uow.idempotency.store(principal, key, _result_record(result))
        await uow.outbox.add(unit.events)
        await uow.commit()
        if isinstance(result, GrantAtCommit):
            return result.options[await result.granted_device()][0]
        return result

    async def _kept_outcome(
        self, principal: Principal, key: str | None, operation: str, digest: str, now: datetime
    ) -> StoredOutcome:
        """What the first request with ``key`` left (committed: the claim waited for it)."""
        assert key is not None
        async with self._uow_factory() as uow:
            first = await uow.idempotency.claim(principal, key, operation, digest, now)
        if first is None:  # the key was pruned meanwhile: nothing is kept, run it afresh
            raise ConcurrentUpdate("the idempotency key was pruned meanwhile; retry")
        return first

    async def _keep_refusal(
        self,
        principal: Principal,
        key: str,
        operation: str,
        digest: str,
        refusal: SchedulerError,
        now: datetime,
    ) -> StoredOutcome | None:
        """Store the refusal on the key (the work was rolled back); ``None`` when stored,
        else the outcome a concurrent first request stored meanwhile."""
        async with self._uow_factory() as uow:
            first = await uow.idempotency.claim(principal, key, operation, digest, now)
            if first is not None:
                return first
            await uow.idempotency.store(principal, key, _refusal_record(refusal))
            await uow.commit()
        return None

    @staticmethod
    def _replay(route: Route[Any, Any], first: StoredOutcome, operation: str, digest: str) -> Any:
        """The first request's result, or its refusal raised again.

        Raises:
            IdempotencyKeyReused: the key was first used for another command or body.
        """
        if first.operation != operation or first.request_hash != digest:
            raise IdempotencyKeyReused()
        outcome = first.outcome or {}
        if "refusal" in outcome:
            raise codec.load(SchedulerError, outcome["refusal"])
        stored = outcome["result"]
        kinds = {(get_origin(kind) or kind).__name__: kind for kind in route.results}
        return codec.load(kinds[stored["type"]], stored["value"])
