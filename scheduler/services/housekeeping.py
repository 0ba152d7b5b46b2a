"""Periodic jobs: lease expiry at the due second, the outbox relay, ledger pruning, and the
platform's suspensions and device limits once their grace ran out.

Each job run claims its tick in the job ledger inside the same transaction as its work, so
two live housekeepers never run one tick twice; the work itself is also guarded by row
conditions, so a tick run late or twice could still not end a lease twice.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from scheduler.domain.errors import InfrastructureError
from scheduler.services.allocations import next_expiry
from scheduler.services.command_path import Unit, run_unit
from scheduler.services.device_health import check_node_heartbeats
from scheduler.services.extensions import warn_expiring
from scheduler.services.leases import end_due_allocations
from scheduler.services.node_operations import step_drains
from scheduler.services.ports import (
    DeviceLifecycle,
    EventStream,
    QueueDispatcher,
    UnitOfWorkFactory,
)
from scheduler.services.queue import time_out_overdue_entries
from scheduler.services.rebalancing import fail_job, running_rebalances, step_rebalance
from scheduler.services.reservations import (
    end_no_shows,
    prewarm_devices,
    send_reminders,
    start_due_reservation,
)
from scheduler.services.user_standing import enforce_standing

logger = logging.getLogger(__name__)

EXPIRE_JOB = "expire-allocations"
RELAY_JOB = "relay-outbox"
PRUNE_JOB = "prune-job-ticks"
QUEUE_TIMEOUT_JOB = "time-out-queue-entries"
WARN_JOB = "warn-expiring-leases"
BOOKINGS_JOB = "run-reservations"
NODE_HEALTH_JOB = "check-node-heartbeats"
NO_SHOW_JOB = "end-no-shows"
STANDING_JOB = "enforce-user-standing"
PRUNE_EVERY_SECONDS = 60.0
#: A relay's claim on a batch it never marked relayed (it died) is taken over after this.
RELAY_TAKEOVER = timedelta(seconds=30)
#: Ledger tick of the timer jobs (expiry, queue timeouts, bookings): finer than a
#: second so that work due mid-second is not held to the next one.
TIMER_TICK_SECONDS = 0.1


def tick_of(now: datetime, interval_seconds: float) -> int:
    """The ledger tick a run at ``now`` belongs to, for a job run every ``interval_seconds``."""
    return math.floor(now.timestamp() / interval_seconds)


async def relay_outbox(
    uow_factory: UnitOfWorkFactory,
    stream: EventStream,
    *,
    now: datetime,
    owner: str,
    interval_seconds: float,
    limit: int = 1000,
) -> Counter[str]:
    """Publish unrelayed outbox events (at least once, in order, each with its id); how many
    of each type.

    The batch is claimed in a transaction of its own and published with no transaction
    open (a slow or paused stream holds no row and no connection); a relay that dies before
    marking its batch leaves it to the next one after ``RELAY_TAKEOVER``.
    """
    async with uow_factory() as uow:
        if not await uow.ticks.claim_tick(RELAY_JOB, tick_of(now, interval_seconds), owner, now):
            return Counter()
        batch = await uow.outbox.claim_unrelayed(limit, now, RELAY_TAKEOVER)
        await uow.commit()
    if not batch:
        return Counter()
    await stream.publish(batch)
    async with uow_factory() as uow:
        await uow.outbox.mark_relayed([seq for seq, _ in batch], now)
        await uow.commit()
    return Counter(record.type for _, record in batch)


async def _claimed(unit: Unit, job: str, interval_seconds: float, owner: str) -> bool:
    return await unit.uow.ticks.claim_tick(
        job, tick_of(unit.now, interval_seconds), owner, unit.now
    )


async def run_expiry(
    uow_factory: UnitOfWorkFactory,
    lifecycle: DeviceLifecycle,
    queue: QueueDispatcher,
    *,
    now: datetime,
    owner: str,
) -> int:
    """Expire every lease due by ``now`` under the ledger tick of this moment; the devices
    are reset and the queue woken once it commits."""

    async def expire(unit: Unit) -> int:
        if not await _claimed(unit, EXPIRE_JOB, TIMER_TICK_SECONDS, owner):
            return 0
        return len(await end_due_allocations(unit))

    return await run_unit(uow_factory, expire, now=now, lifecycle=lifecycle, queue=queue)


async def run_user_standing(
    uow_factory: UnitOfWorkFactory,
    lifecycle: DeviceLifecycle,
    queue: QueueDispatcher,
    *,
    now: datetime,
    owner: str,
) -> int:
    """Suspensions and device limits whose grace ran out, under this second's ledger tick."""

    async def enforce(unit: Unit) -> int:
        if not await _claimed(unit, STANDING_JOB, 1.0, owner):
            return 0
        return await enforce_standing(unit)

    return await run_unit(uow_factory, enforce, now=now, lifecycle=lifecycle, queue=queue)


async def run_node_health(
    uow_factory: UnitOfWorkFactory,
    lifecycle: DeviceLifecycle,
    queue: QueueDispatcher,
    *,
    now: datetime,
    owner: str,
    offline_after: timedelta,
) -> tuple[int, int]:
    """Nodes silent too long go offline (their leases relocated), nodes heard from again
    come back, and drains move on (at their deadline), under this second's ledger tick."""

    async def check(unit: Unit) -> tuple[int, int]:
        if not await _claimed(unit, NODE_HEALTH_JOB, 1.0, owner):
            return 0, 0
        health = await check_node_heartbeats(unit, offline_after)
        await step_drains(unit)
        return health

    return await run_unit(uow_factory, check, now=now, lifecycle=lifecycle, queue=queue)


async def run_rebalances(
    uow_factory: UnitOfWorkFactory,
    lifecycle: DeviceLifecycle,
    queue: QueueDispatcher,
    *,
    now: datetime,
    budget_seconds: float,
) -> tuple[int, bool]:
    """The next moves of the running rebalance jobs, one transaction each (the job's row
    held, its progress written with the move), for about ``budget_seconds``: how many ran,
    and whether moves are left."""
    async with uow_factory() as uow:
        jobs = await running_rebalances(uow)
    deadline = time.monotonic() + budget_seconds
    steps = 0
    for job_id in jobs:

        async def step(unit: Unit, job_id: uuid.UUID = job_id) -> bool:
            return await step_rebalance(unit, job_id)

        while True:
            if time.monotonic() >= deadline:
                return steps, True
            try:
                if not await run_unit(uow_factory, step, now=now, lifecycle=lifecycle, queue=queue):
                    break
            except InfrastructureError:
                raise  # the database is away: the next tick goes on from the same move
            except Exception as error:
                # A move that fails with anything else would fail at every tick: the job
                # stops, saying why, and its moves so far stay done.
                logger.exception("rebalance job %s failed", job_id)
                await run_unit(uow_factory, partial(fail_job, job_id=job_id, error=error), now=now)
                break
            steps += 1
    return steps, False


async def run_queue_timeouts(uow_factory: UnitOfWorkFactory, *, now: datetime, owner: str) -> int:
    """Time out every waiting entry past its deadline under the ledger tick of this moment."""

    async def time_out(unit: Unit) -> int:
        if not await _claimed(unit, QUEUE_TIMEOUT_JOB, TIMER_TICK_SECONDS, owner):
            return 0
        return await time_out_overdue_entries(unit)

    return await run_unit(uow_factory, time_out, now=now)


async def run_expiry_warnings(
    uow_factory: UnitOfWorkFactory, *, now: datetime, owner: str, lead: timedelta
) -> int:
    async def warn(unit: Unit) -> int:
        if not await _claimed(unit, WARN_JOB, 1.0, owner):
            return 0
        return await warn_expiring(unit, lead=lead)

    return await run_unit(uow_factory, warn, now=now)


async def run_reservations(
    uow_factory: UnitOfWorkFactory,
    lifecycle: DeviceLifecycle,
    queue: QueueDispatcher,
    *,
    now: datetime,
    owner: str,
    limit: int = 100,
) -> int:
    """Reminders, pre-warm resets and activations due by ``now``, under this moment's tick:
    each booking is activated exactly once, even with two housekeepers alive."""

    async def remind_and_prewarm(unit: Unit) -> bool:
        if not await _claimed(unit, BOOKINGS_JOB, TIMER_TICK_SECONDS, owner):
            return False
        await send_reminders(unit)
        await prewarm_devices(unit)
        return True

    if not await run_unit(
        uow_factory, remind_and_prewarm, now=now, lifecycle=lifecycle, queue=queue
    ):
        return 0
    started = 0
    while started < limit and (
        await run_unit(
            uow_factory, start_due_reservation, now=now, lifecycle=lifecycle, queue=queue
        )
        is not None
    ):
        started += 1
    return started


async def run_no_shows(
    uow_factory: UnitOfWorkFactory,
    lifecycle: DeviceLifecycle,
    queue: QueueDispatcher,
    *,
    now: datetime,
    owner: str,
) -> int:
    """Bookings not checked in within their window become no-shows (their leases revoked,
    the devices reset and the queue woken once it commits), under this second's tick."""

    async def end(unit: Unit) -> int:
        if not await _claimed(unit, NO_SHOW_JOB, 1.0, owner):
            return 0
        return await end_no_shows(unit)

    return await run_unit(uow_factory, end, now=now, lifecycle=lifecycle, queue=queue)


async def prune_ledger(
    uow_factory: UnitOfWorkFactory,
    *,
    now: datetime,
    owner: str,
    retention_seconds: float,
    outbox_retention: timedelta = timedelta(hours=72),
    idempotency_retention: timedelta = timedelta(hours=24),
) -> int:
    """Forget old job ticks, idempotency keys (a retry after that runs the command again)
    and relayed events (an event not yet relayed is kept however old)."""
    async with uow_factory() as uow:
        if not await uow.ticks.claim_tick(PRUNE_JOB, tick_of(now, PRUNE_EVERY_SECONDS), owner, now):
            return 0
        pruned = await uow.ticks.prune(now - timedelta(seconds=retention_seconds))
        pruned += await uow.idempotency.prune(now - idempotency_retention)
        pruned += await uow.outbox.prune(now - outbox_retention)
        await uow.commit()
    return pruned


@dataclass
class HousekeeperConfig:
    relay_seconds: float
    max_sleep_seconds: float
    retention_seconds: float
    queue_sweep_seconds: float = 5.0
    warning_lead_seconds: float = 300.0
    outbox_retention_hours: float = 72.0
    idempotency_retention_hours: float = 24.0
    node_offline_after_seconds: float = 30.0
    #: Time per tick the housekeeper gives the moves of rebalance jobs.
    job_seconds_per_tick: float = 0.25


class Housekeeper:
    """The periodic jobs as one ``tick(now)`` and a ``seconds_until_next(now)``; the Ray actor
    only loops over them."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        stream: EventStream,
        lifecycle: DeviceLifecycle,
        queue: QueueDispatcher,
        config: HousekeeperConfig,
        owner: str,
    ) -> None:
        self._uow_factory = uow_factory
        self._stream = stream
        self._lifecycle = lifecycle
        self._queue = queue
        self._next_deadline: datetime | None = None
        self._next_booking: datetime | None = None
        self._next_sweep: datetime | None = None
        self._config = config
        self._owner = owner
        self._next_expiry: datetime | None = None
        self._relay: asyncio.Task[None] | None = None
        self.expired_total = 0
        self.relayed_total = 0
        self.timed_out_total = 0
        self.activated_total = 0
        self.offline_total = 0
        self.online_total = 0
        self.rebalance_moves_total = 0
        #: Events relayed by this housekeeper, by type (the metrics count them).
        self.relayed_by_type: Counter[str] = Counter()
        self.no_show_total = 0
        self._jobs_left = False

    async def tick(self, now: datetime) -> None:
        """Run whatever is due; each job fails alone and is retried next tick."""
        try:
            if self._next_expiry is None or self._next_expiry <= now:
                self.expired_total += await run_expiry(
                    self._uow_factory, self._lifecycle, self._queue, now=now, owner=self._owner
                )
            self._next_expiry = await next_expiry(self._uow_factory())
        except Exception:
            logger.exception("lease expiry failed")
        try:
            if self._next_deadline is None or self._next_deadline <= now:
                self.timed_out_total += await run_queue_timeouts(
                    self._uow_factory, now=now, owner=self._owner
                )
            async with self._uow_factory() as uow:
                self._next_deadline = await uow.queue.next_deadline()
        except Exception:
            logger.exception("queue timeouts failed")
        try:
            if self._next_booking is None or self._next_booking <= now:
                self.activated_total += await run_reservations(
                    self._uow_factory, self._lifecycle, self._queue, now=now, owner=self._owner
                )
            async with self._uow_factory() as uow:
                self._next_booking = await uow.reservations.next_start()
        except Exception:
            logger.exception("reservations failed")
        try:
            gone, back = await run_node_health(
                self._uow_factory,
                self._lifecycle,
                self._queue,
                now=now,
                owner=self._owner,
                offline_after=timedelta(seconds=self._config.node_offline_after_seconds),
            )
            self.offline_total += gone
            self.online_total += back
        except Exception:
            logger.exception("node heartbeat check failed")
        try:
            steps, self._jobs_left = await run_rebalances(
                self._uow_factory,
                self._lifecycle,
                self._queue,
                now=now,
                budget_seconds=self._config.job_seconds_per_tick,
            )
            self.rebalance_moves_total += steps
        except Exception:
            self._jobs_left = False
            logger.exception("rebalance jobs failed")
        try:
            await run_user_standing(
                self._uow_factory, self._lifecycle, self._queue, now=now, owner=self._owner
            )
        except Exception:
            logger.exception("user standing enforcement failed")
        try:
            self.no_show_total += await run_no_shows(
                self._uow_factory, self._lifecycle, self._queue, now=now, owner=self._owner
            )
        except Exception:
            logger.exception("no-show check failed")
        try:
            await run_expiry_warnings(
                self._uow_factory,
                now=now,
                owner=self._owner,
                lead=timedelta(seconds=self._config.warning_lead_seconds),
            )
        except Exception:
            logger.exception("expiry warnings failed")
        if self._next_sweep is None or self._next_sweep <= now:
            # The safety sweep: drains are event-driven; this only catches a lost wake.
            self._queue.wake(new_entries=True)
            self._next_sweep = now + timedelta(seconds=self._config.queue_sweep_seconds)
        if self._relay is None or self._relay.done():
            # Off the tick: a slow or paused stream never delays the timer jobs.
            self._relay = asyncio.get_running_loop().create_task(self._relay_once(now))
        try:
            await prune_ledger(
                self._uow_factory,
                now=now,
                owner=self._owner,
                retention_seconds=self._config.retention_seconds,
                outbox_retention=timedelta(hours=self._config.outbox_retention_hours),
                idempotency_retention=timedelta(hours=self._config.idempotency_retention_hours),
            )
        except Exception:
            logger.exception("job ledger pruning failed")

    async def _relay_once(self, now: datetime) -> None:
        try:
            relayed = await relay_outbox(
                self._uow_factory,
                self._stream,
                now=now,
                owner=self._owner,
                interval_seconds=self._config.relay_seconds,
            )
            self.relayed_total += relayed.total()
            self.relayed_by_type.update(relayed)
        except Exception:
            logger.exception("outbox relay failed")

    async def idle(self) -> None:
        """Wait for the relay started by the last tick (tests and shutdown)."""
        if self._relay is not None:
            await asyncio.gather(self._relay, return_exceptions=True)

    def seconds_until_next(self, now: datetime) -> float:
        """Sleep until the next lease or queue deadline is due, never past the relay interval;
        not at all while a job has moves left."""
        if self._jobs_left:
            return 0.0
        wait = self._config.relay_seconds
        for due in (self._next_expiry, self._next_deadline, self._next_booking):
            if due is not None:
                wait = min(wait, (due - now).total_seconds())
        return max(0.0, min(wait, self._config.max_sleep_seconds))
