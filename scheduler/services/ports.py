"""The interfaces the use cases need; adapters implement them, bootstrap picks which."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from placement.model import CandidateDevices
from scheduler.domain.allocations import Allocation, AllocationStatus, UsageRecord
from scheduler.domain.events import DomainEvent, EventRecord
from scheduler.domain.fleet import Device, DeviceStatus, Drain, Node, NodeStatus
from scheduler.domain.identity import Credential, Principal, Role, Scope, TokenInfo
from scheduler.domain.jobs import Job, JobError, JobStatus
from scheduler.domain.queueing import QueueEntry, QueueStatus, WaitView
from scheduler.domain.rate_limits import RateLimit, RateVerdict
from scheduler.domain.reservations import Reservation, ReservationStatus
from scheduler.domain.resources import DeviceRequirements, Resources, Taint
from scheduler.domain.strategies import Activation, StrategyDefinition
from scheduler.domain.tasks import Task, TaskStatus
from scheduler.domain.tenants import Tenant
from scheduler.domain.usage_stats import FleetGauges, LeaseInterval, NodeTotals, UsageTotal
from scheduler.services.commands import AllocationFilter, Page, PendingLease


class TenantRepository(Protocol):
    async def add(self, tenant: Tenant) -> None: ...
    async def get(self, tenant_id: uuid.UUID) -> Tenant | None: ...
    async def lock(self, tenant_id: uuid.UUID) -> Tenant | None:
        """Read the tenant and hold its row until the transaction ends."""
        ...

    async def get_by_name(self, name: str) -> Tenant | None: ...
    async def list(self) -> list[Tenant]: ...
    async def refund(self, tenant_id: uuid.UUID, resources: Resources) -> None: ...
    async def with_devices_left(self, tenant_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]: ...
    async def update(
        self,
        tenant_id: uuid.UUID,
        tier: str | None,
        max_devices: int | None,
        quota: Resources | None,
        max_extensions: int | None = None,
        max_lease_minutes: int | None = None,
        rate_limit: RateLimit | None = None,
    ) -> Tenant | None: ...


class TokenRepository(Protocol):
    async def add(
        self,
        token_id: uuid.UUID,
        token_hash: bytes,
        tenant_id: uuid.UUID,
        user_id: str,
        role: Role,
        now: datetime,
        *,
        expires_at: datetime | None = None,
        bootstrap: bool = False,
    ) -> None: ...
    async def credential_for(self, token_hash: bytes) -> Credential | None: ...
    async def list(self, tenant_id: uuid.UUID | None) -> list[TokenInfo]: ...
    async def revoke(self, token_id: uuid.UUID, now: datetime) -> TokenInfo | None: ...
    async def revoke_user(self, user_id: str, now: datetime) -> int: ...
    async def revoke_bootstrap_except(self, token_hash: bytes, now: datetime) -> int: ...
    async def reinstate_bootstrap(self, token_hash: bytes) -> bool: ...


class NodeRepository(Protocol):
    async def add(self, node: Node) -> None: ...
    async def mark_offline(self, silent_since: datetime) -> list[Node]: ...
    async def mark_online(self, heard_since: datetime) -> list[Node]: ...
    async def get(self, node_id: uuid.UUID, *, lock: bool = False) -> Node | None: ...
    async def list(self, *, removed: bool = False) -> list[Node]: ...
    async def ids(self) -> list[uuid.UUID]:
        """The ids of the nodes not removed (what node agents adopt), nothing else."""
        ...

    async def update(self, node: Node) -> None: ...
    async def set_state(
        self, node_id: uuid.UUID, status: NodeStatus, reason: str | None, drain: Drain | None
    ) -> Node | None: ...
    async def draining(self) -> list[Node]: ...
    async def remove(self, node_id: uuid.UUID) -> list[uuid.UUID]: ...
    async def holdings(self, node_id: uuid.UUID) -> tuple[int, int]:
        """The active leases and the bookings not yet ended on its devices."""
        ...

    async def set_status(self, node_id: uuid.UUID, status: NodeStatus) -> Node | None: ...
    async def heartbeat(self, node_ids: Sequence[uuid.UUID], now: datetime) -> None: ...
    async def device_usage(self, node_id: uuid.UUID) -> tuple[Resources, int]: ...
    async def usage_by_node(self) -> dict[uuid.UUID, tuple[Resources, int]]:
        """Each node's devices (not retired): their specs summed, and their count."""
        ...

    async def device_counts(self) -> dict[uuid.UUID, dict[str, int]]: ...


@dataclass(frozen=True)
class PlacementSnapshot:
    """What a placement decides with: the tenant, the candidate classes, the strategy, and
    the devices read whole (the first few of each class, when asked)."""

    tenant: Tenant | None
    candidates: CandidateDevices
    strategy: str
    devices: dict[uuid.UUID, Device]
    #: The candidates were read for many requests alike (lately, or ranked without this
    #: tenant's quota): that they offer nothing this tenant may take proves nothing. A
    #: shared snapshot without a tenant read nothing at all (a read this process kept).
    shared: bool = False


class DeviceRepository(Protocol):
    async def add_many(self, devices: Sequence[Device]) -> None: ...
    async def get(self, device_id: uuid.UUID) -> Device | None: ...
    async def get_many(self, device_ids: Sequence[uuid.UUID]) -> list[Device]: ...
    async def placement_snapshot(
        self,
        tenant_id: uuid.UUID,
        requirements: DeviceRequirements,
        *,
        lock_tenant: bool = True,
        detailed: int = 0,
        recent: bool = False,
    ) -> PlacementSnapshot:
        """Read the tenant (its row locked for the rest of the transaction unless
        ``lock_tenant`` is false), the available devices that match ``requirements`` and the
        strategy; ``detailed``: how many devices of each candidate class to read whole.
        ``recent``: the candidates may come from a read this process made lately for the
        same requirements (a ``shared`` snapshot, its devices all read whole)."""
        ...

    async def transition(
        self,
        device_ids: Sequence[uuid.UUID],
        source: DeviceStatus,
        target: DeviceStatus,
        now: datetime,
    ) -> list[Device]: ...
    async def mark_failed(self, device_id: uuid.UUID, now: datetime) -> Device | None: ...
    async def set_labels(self, device_id: uuid.UUID, labels: dict[str, str]) -> Device | None: ...
    async def retire(self, device_id: uuid.UUID, now: datetime) -> Device | None: ...
    async def holdings(self, device_id: uuid.UUID) -> tuple[int, int]: ...
    async def claim_replacement(
        self,
        device: Device,
        node_labels: dict[str, str],
        lease_end: datetime,
        now: datetime,
        *,
        other_node: bool,
        preferred_node: uuid.UUID | None = None,
        only: uuid.UUID | None = None,
    ) -> Device | None: ...
    async def send_transition(
        self,
        device_ids: Sequence[uuid.UUID],
        source: DeviceStatus,
        target: DeviceStatus,
        now: datetime,
    ) -> None: ...
    async def list_available(
        self, labels: dict[str, str], limit: int, cursor: str | None, total: int | None = None
    ) -> Page[Device]: ...
    async def occupying(self) -> list[Device]: ...
    async def booked(self) -> set[uuid.UUID]: ...
    async def shapes(self) -> list[Device]:
        """One device per node and distinct spec, among those not retired."""
        ...

    async def in_status(
        self, node_ids: Sequence[uuid.UUID], statuses: Sequence[DeviceStatus]
    ) -> list[Device]: ...
    async def next_adb_port(self, host: str) -> int: ...
    async def matching_states(
        self, requirements: DeviceRequirements
    ) -> list[tuple[uuid.UUID, DeviceStatus, datetime | None]]:
        """Id, status (and lease expiry, when leased) of every device that matches and is or
        will become available."""
        ...


class AllocationRepository(Protocol):
    async def grant(
        self, lease: PendingLease, ranked_device_ids: Sequence[uuid.UUID]
    ) -> tuple[Device, bool] | None:
        """Claim the first still-available device of ``ranked_device_ids``, skipping any that
        another transaction holds, charge the tenant's quota and insert the lease.

        Returns ``None`` when no device could be claimed, else the device and whether the
        quota admitted it (when it did not, nothing was inserted)."""
        ...

    async def grant_planned(
        self,
        lease: PendingLease,
        device_ids: Sequence[uuid.UUID],
        requirements: DeviceRequirements,
    ) -> tuple[Device, bool] | None:
        """Claim the first of a plan's devices that still matches, without a fleet read."""
        ...

    async def grant_at_commit(
        self,
        lease: PendingLease,
        device_ids: Sequence[uuid.UUID],
        matching: DeviceRequirements | None = None,
        *,
        ranked_by: str | None = None,
    ) -> Callable[[], Awaitable[uuid.UUID]]:
        """Send ``grant`` for the transaction's commit to carry: the commit fails if it
        leased no device (``ClaimContended``, ``QuotaExceeded``); the call returned reads,
        once committed, the device the lease got. With ``matching`` (devices of a shared
        read), each device is checked again against it: on a ready, untainted node, its
        labels and size. With ``ranked_by`` (devices ranked without reading the tenant or
        the strategy), the strategy must still be that one, and every refusal, the quota's
        too, is ``ClaimContended``."""
        ...

    async def get(self, allocation_id: uuid.UUID, scope: Scope) -> Allocation | None: ...
    async def lock_active_on(
        self, *, device_ids: Sequence[uuid.UUID] = (), node_ids: Sequence[uuid.UUID] = ()
    ) -> list[Allocation]: ...
    async def lock_active_of(self, holder: Scope) -> list[Allocation]: ...
    async def movable(self, ends_after: datetime) -> list[Allocation]: ...
    async def move(
        self, allocation_id: uuid.UUID, from_device: uuid.UUID, to_device: uuid.UUID
    ) -> None: ...
    async def lock_with_node(
        self,
        scope: Scope,
        *,
        allocation_id: uuid.UUID | None = None,
        device_id: uuid.UUID | None = None,
    ) -> tuple[Allocation, uuid.UUID] | None:
        """The lease (by id, or the active one on a device), held, and its device's node."""
        ...

    async def end(
        self,
        allocation_id: uuid.UUID,
        status: AllocationStatus,
        ended_at: datetime,
        reason: str,
    ) -> None:
        """End the lease if it is still active (callers hold its row lock)."""
        ...

    async def lock_due(self, now: datetime, limit: int) -> list[Allocation]: ...
    async def extend(self, allocation_id: uuid.UUID, expires_at: datetime) -> None: ...
    async def lock_unwarned(self, before: datetime, limit: int) -> list[Allocation]: ...
    async def mark_warned(self, allocation_ids: Sequence[uuid.UUID], now: datetime) -> None: ...
    async def find_preemptible(
        self, requirements: DeviceRequirements, tiers: Sequence[str], exclude_tenant: uuid.UUID
    ) -> Allocation | None: ...
    async def preemption_pending(self, entry_id: uuid.UUID) -> bool: ...
    async def mark_for_revocation(
        self, allocation_id: uuid.UUID, revoke_at: datetime, entry_id: uuid.UUID
    ) -> None: ...
    async def clear_revocation(self, allocation_id: uuid.UUID) -> None: ...
    async def lock_revocations_due(
        self, now: datetime, limit: int
    ) -> list[tuple[Allocation, uuid.UUID, bool]]: ...
    async def next_expiry(self) -> datetime | None: ...
    async def list(self, scope: Scope, query: AllocationFilter) -> Page[Allocation]: ...
    async def stats(self, scope: Scope, now: datetime) -> dict[str, Any]: ...


class QueueRepository(Protocol):
    async def add(self, entry: QueueEntry) -> None: ...
    async def get(self, entry_id: uuid.UUID, scope: Scope) -> QueueEntry | None: ...
    async def lock_waiting(self, entry_id: uuid.UUID, scope: Scope) -> QueueEntry | None:
        """The entry, held, if it still waits and no other transaction holds it."""
        ...

    async def lock_waiting_of(self, holder: Scope) -> list[QueueEntry]: ...
    async def waiting(self) -> list[QueueEntry]: ...
    async def store_views(self, views: Mapping[uuid.UUID, WaitView]) -> None:
        """Write each waiting entry's view and announce them (``queue:viewed``)."""
        ...

    async def count_waiting(self, tenant_id: uuid.UUID) -> tuple[int, int]: ...
    async def fulfil(
        self, entry_id: uuid.UUID, allocation_id: uuid.UUID, now: datetime
    ) -> None: ...
    async def end(
        self, entry_id: uuid.UUID, status: QueueStatus, now: datetime, reason: str | None
    ) -> None: ...
    async def lock_overdue(self, now: datetime, limit: int) -> list[QueueEntry]: ...
    async def next_deadline(self) -> datetime | None: ...
    async def list(
        self, scope: Scope, status: str | None, limit: int, cursor: str | None
    ) -> Page[QueueEntry]: ...
    async def stats(self, scope: Scope) -> dict[str, Any]: ...
    async def recent_usage(
        self, now: datetime, half_life: timedelta, window: timedelta
    ) -> dict[uuid.UUID, float]: ...


class ReservationRepository(Protocol):
    async def lock_pending_on(self, device_id: uuid.UUID) -> list[Reservation]: ...
    async def lock_pending_of(self, holder: Scope) -> list[Reservation]: ...
    async def check_in(self, reservation_id: uuid.UUID, now: datetime) -> None: ...
    async def no_shows(self, now: datetime, limit: int) -> list[Reservation]: ...
    async def add(self, r: Reservation) -> None: ...
    async def get(
        self, reservation_id: uuid.UUID, scope: Scope, *, lock: bool = False
    ) -> Reservation | None: ...
    async def lock_device(self, device_id: uuid.UUID) -> bool: ...
    async def conflicts(
        self,
        device_ids: Sequence[uuid.UUID],
        prewarm_at: datetime,
        end_time: datetime,
        reset: timedelta,
        exclude: uuid.UUID | None = None,
    ) -> list[tuple[uuid.UUID, datetime, datetime, uuid.UUID]]: ...
    async def device_placement(
        self, device_id: uuid.UUID
    ) -> tuple[DeviceStatus, NodeStatus, tuple[Taint, ...]] | None: ...
    async def tenant_holdings(
        self,
        tenant_id: uuid.UUID,
        prewarm_at: datetime,
        end_time: datetime,
        exclude: uuid.UUID | None = None,
    ) -> tuple[int, int]: ...
    async def matching_device_ids(self, requirements: DeviceRequirements) -> list[uuid.UUID]: ...
    async def free_candidates(
        self,
        requirements: DeviceRequirements,
        prewarm_at: datetime,
        end_time: datetime,
        reset: timedelta,
    ) -> CandidateDevices: ...
    async def update_window(
        self,
        reservation_id: uuid.UUID,
        device_id: uuid.UUID,
        start: datetime,
        end: datetime,
        prewarm_at: datetime,
    ) -> None: ...
    async def end(
        self,
        reservation_id: uuid.UUID,
        status: ReservationStatus,
        now: datetime,
        reason: str | None,
    ) -> None: ...
    async def activate(
        self, reservation_id: uuid.UUID, allocation_id: uuid.UUID | None, device_id: uuid.UUID
    ) -> None: ...
    async def complete_for(self, allocation_id: uuid.UUID, now: datetime) -> None: ...
    async def lock_starting(
        self, now: datetime, limit: int, grace: timedelta
    ) -> list[Reservation]: ...
    async def lock_to_prewarm(self, now: datetime, limit: int) -> list[Reservation]: ...
    async def lock_to_remind(self, now: datetime, limit: int) -> list[Reservation]: ...
    async def mark(self, column: str, ids: Sequence[uuid.UUID], now: datetime) -> None: ...
    async def next_start(self) -> datetime | None: ...
    async def next_booking_after(
        self, device_id: uuid.UUID, after: datetime
    ) -> datetime | None: ...
    async def list(
        self,
        scope: Scope,
        status: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> Page[Reservation]: ...
    async def stats(self, scope: Scope, now: datetime) -> dict[str, Any]: ...


class UsageRepository(Protocol):
    async def add(self, record: UsageRecord, now: datetime) -> None: ...
    async def totals(
        self, start: datetime, end: datetime, tenant_id: uuid.UUID | None
    ) -> list[UsageTotal]: ...


class OutboxRepository(Protocol):
    async def add(self, events: Sequence[DomainEvent]) -> None: ...
    async def add_for_granted(
        self, lease_id: uuid.UUID, events_by_device: Mapping[uuid.UUID, Sequence[DomainEvent]]
    ) -> None:
        """Add the events listed under the device the lease got in this transaction."""
        ...

    async def claim_unrelayed(
        self, limit: int, now: datetime, takeover: timedelta
    ) -> list[tuple[int, EventRecord]]: ...
    async def prune(self, relayed_before: datetime) -> int: ...
    async def mark_relayed(self, seqs: Sequence[int], now: datetime) -> None: ...
    async def recent(self, limit: int) -> list[tuple[int, EventRecord]]: ...


class IdempotencyRepository(Protocol):
    async def claim(
        self, principal: Principal, key: str, operation: str, request_hash: str, now: datetime
    ) -> StoredOutcome | None:
        """Claim the key inside the caller's transaction; ``None`` when claimed, else what
        the first request with it left (waiting for that request's transaction to end)."""
        ...

    async def claim_sent(
        self, principal: Principal, key: str, operation: str, request_hash: str, now: datetime
    ) -> Callable[[], Awaitable[bool]]:
        """``claim`` sent with the transaction's next read; the call returned says whether
        this transaction claimed the key (else ``claim`` in a new one reads what is kept)."""
        ...

    async def store(self, principal: Principal, key: str, outcome: dict[str, Any]) -> None:
        """Record the outcome on the key this transaction claimed."""
        ...

    async def store_for_granted(
        self,
        principal: Principal,
        key: str,
        lease_id: uuid.UUID,
        outcomes_by_device: Mapping[uuid.UUID, dict[str, Any]],
    ) -> None:
        """Record the outcome listed under the device the lease got in this transaction."""
        ...

    async def prune(self, before: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class StoredOutcome:
    """An idempotency key's row: the first request's operation, fingerprint and outcome."""

    operation: str
    request_hash: str
    outcome: dict[str, Any] | None


class JobLedger(Protocol):
    async def claim_tick(self, job: str, tick: int, owner: str, now: datetime) -> bool: ...
    async def prune(self, before: datetime) -> int: ...


class JobRepository(Protocol):
    """Records of long-running background jobs: their work items, progress and outcome."""

    async def add(self, job: Job) -> None: ...
    async def get(self, job_id: uuid.UUID, *, lock: bool = False) -> Job | None:
        """The job (``lock``: its row held until the transaction ends)."""
        ...

    async def list(
        self, kind: str | None, status: JobStatus | None, limit: int, cursor: str | None
    ) -> Page[Job]:
        """Newest first, without their work items (``get`` reads them)."""
        ...

    async def running(self, kind: str, limit: int) -> list[Job]:
        """The oldest running jobs of ``kind`` nobody else holds, their rows held until the
        transaction ends (two workers never take one job)."""
        ...

    async def advance(
        self,
        job_id: uuid.UUID,
        *,
        done: int,
        counts: Mapping[str, int],
        new_errors: Sequence[JobError],
        now: datetime,
        total: int | None = None,
    ) -> None:
        """Set its progress and counts (and its ``total``, when given), and append
        ``new_errors`` to its errors."""
        ...

    async def finish(
        self,
        job_id: uuid.UUID,
        *,
        status: JobStatus,
        result: Mapping[str, Any] | None,
        message: str | None,
        now: datetime,
    ) -> None: ...


class SchedulerConfig(Protocol):
    async def strategy(self) -> str: ...
    async def strategy_weights(self) -> tuple[int, int, int] | None: ...


class StrategyRepository(Protocol):
    async def list(self) -> list[StrategyDefinition]: ...
    async def get(
        self, strategy_id: uuid.UUID, *, lock: bool = False
    ) -> StrategyDefinition | None: ...
    async def named(self, name: str) -> StrategyDefinition | None: ...
    async def active(self) -> StrategyDefinition | None: ...
    async def add(self, strategy: StrategyDefinition) -> None: ...
    async def update(self, strategy: StrategyDefinition) -> None: ...
    async def delete(self, strategy_id: uuid.UUID) -> None: ...
    async def hold_settings(self) -> None: ...
    async def activate(self, strategy_id: uuid.UUID, now: datetime, by: str) -> None: ...
    async def activations(self, limit: int) -> list[Activation]: ...


class StatsRepository(Protocol):
    async def node_totals(self) -> dict[uuid.UUID, NodeTotals]: ...
    async def gauges(self, now: datetime, silent_since: datetime) -> FleetGauges: ...
    async def device_counts(self, node_id: uuid.UUID | None = None) -> dict[str, int]: ...
    async def lease_intervals(
        self, since: datetime, now: datetime, node_id: uuid.UUID | None = None
    ) -> list[LeaseInterval]: ...
    async def tasks(
        self, scope: Scope, status: TaskStatus | None, offset: int, limit: int
    ) -> tuple[list[Task], int]: ...


class InboxRepository(Protocol):
    async def claim(
        self, message_id: str, source: str, routing_key: str, now: datetime
    ) -> str | None: ...
    async def applied(self, message_id: str, outcome: str, now: datetime) -> None: ...
    async def failed(
        self,
        message_id: str,
        source: str,
        routing_key: str,
        error: str,
        now: datetime,
        *,
        dead_after: int,
    ) -> tuple[int, bool]: ...


class StandingRepository(Protocol):
    async def suspend(self, user_id: str, cause: str, reason: str, now: datetime) -> None: ...
    async def reinstate(self, user_id: str) -> bool: ...
    async def suspended_users(self) -> frozenset[str]: ...
    async def suspension_cause(self, user_id: str) -> str | None: ...
    async def active_leases(self, user_id: str) -> int: ...
    async def set_limit(
        self, user_id: str, max_devices: int, now: datetime, enforce_at: datetime | None
    ) -> None: ...
    async def lock_due_limits(self, now: datetime, limit: int) -> list[tuple[str, int]]: ...
    async def limit_enforced(self, user_id: str) -> None: ...
    async def payment_failed(self, user_id: str, now: datetime) -> int: ...
    async def suspension_due(
        self, user_id: str, reason: str, due_at: datetime, now: datetime
    ) -> datetime: ...
    async def settle(self, user_id: str, now: datetime) -> bool: ...
    async def lock_due_suspensions(self, now: datetime, limit: int) -> list[tuple[str, str]]: ...
    async def suspension_applied(self, user_id: str) -> None: ...


class UnitOfWork(Protocol):
    """One transaction: ``async with uow: ...; await uow.commit()``; leaving rolls back."""

    tenants: TenantRepository
    tokens: TokenRepository
    nodes: NodeRepository
    devices: DeviceRepository
    allocations: AllocationRepository
    usage: UsageRepository
    queue: QueueRepository
    reservations: ReservationRepository
    outbox: OutboxRepository
    idempotency: IdempotencyRepository
    ticks: JobLedger
    jobs: JobRepository
    config: SchedulerConfig
    stats: StatsRepository
    strategies: StrategyRepository
    inbox: InboxRepository
    standing: StandingRepository

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...
    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested transaction: an error leaving it rolls back only what ran inside."""
        ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


class EventStream(Protocol):
    """Where relayed outbox events go (a Redis Stream in production)."""

    async def publish(self, events: Sequence[tuple[int, EventRecord]]) -> None: ...


#: What the change feed announces (the triggers of migration 0009 spell the first two).
def entry_changed(entry_id: uuid.UUID) -> str:
    return f"queue:{entry_id}"


def lease_changed(allocation_id: uuid.UUID) -> str:
    return f"allocation:{allocation_id}"


VIEWS_UPDATED = "queue:viewed"
QUEUE_EMPTY = "queue:empty"
TOKENS_REVOKED = "token:revoked"
#: A user was suspended or reinstated (migration 0022).
USER_STANDING = "user:standing"


class ChangeFeed(Protocol):
    """Committed changes as they are announced: ``queue:<id>`` (an entry's status changed),
    ``allocation:<id>`` (a lease's did), ``queue:viewed`` (a drain stored new views)."""

    def watch(self, *keys: str) -> AbstractAsyncContextManager[asyncio.Event]:
        """An event set when any of ``keys`` is announced after the block was entered."""
        ...

    @property
    def queue_empty(self) -> bool:
        """Whether the last drain announced that nobody waits (``False`` while unknown)."""
        ...

    @property
    def listening(self) -> bool:
        """Whether announcements are heard now (else callers must not rely on them)."""
        ...

    def on(self, key: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever ``key`` is announced (and when the feed reconnects)."""
        ...


class RateLimiter(Protocol):
    """Token buckets shared by every replica."""

    async def check(self, buckets: Sequence[tuple[str, RateLimit]]) -> RateVerdict:
        """Draw one request from every bucket, or none when any is empty (a limiter that
        cannot be reached lets the request go on)."""
        ...


class DeviceLifecycle(Protocol):
    """Drives device work on the nodes (provisioning, resets) after the database decided."""

    async def provision(self, node_id: uuid.UUID, device_ids: Sequence[uuid.UUID]) -> None:
        """Provision and wait until the devices are ready."""
        ...

    def request_reset(self, node_id: uuid.UUID, device_ids: Sequence[uuid.UUID]) -> None:
        """Ask for a reset without waiting; the node reconciles anything lost."""
        ...

    def start_agent(self, node_id: uuid.UUID, host: str) -> None:
        """Make sure the node has a running agent (it heartbeats), on its ``host`` where the
        runtime places agents by host; without waiting."""
        ...

    async def simulate(self, node_id: uuid.UUID, device_id: uuid.UUID | None, action: str) -> None:
        """Fail or recover a device (or a whole node) on demand; simulated driver only."""
        ...


class QueueDispatcher(Protocol):
    """Drives the wait queue. ``wake`` says capacity may have freed: the queue drains without
    the caller waiting, and only when it can matter — always for ``new_entries``; for
    ``tenants`` (their quota freed) only if one of them has waiters; for ``devices`` (they
    became available) only if a waiter could take one; with neither, whenever anyone waits.
    ``drain`` runs one drain now and says how many entries it granted."""

    def wake(
        self,
        new_entries: bool = False,
        *,
        tenants: Collection[uuid.UUID] = (),
        devices: Collection[uuid.UUID] = (),
    ) -> None: ...
    async def drain(self, max_grants: int | None = None) -> int: ...


@runtime_checkable
class FaultInjection(Protocol):
    """A driver that can make a device fail on demand (the simulated one)."""

    def break_device(self, device_id: uuid.UUID) -> None: ...
    def heal_device(self, device_id: uuid.UUID) -> None: ...


class DeviceDriver(Protocol):
    """Talks to the phones on a node (a simulated driver by default)."""

    async def provision(self, devices: Sequence[Device]) -> None: ...
    async def reset(self, devices: Sequence[Device]) -> Collection[uuid.UUID]:
        """Factory-reset the devices; the ids of those whose reset failed (raising: the
        whole call failed, none was reset)."""
        ...
