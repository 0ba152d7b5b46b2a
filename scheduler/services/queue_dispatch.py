"""Running queue drains in one process: wakes coalesce, drains never overlap, and after
each drain every waiting entry's view (place, start, reason) is stored where a read finds it
with one lookup (the QueueActor runs this; tests and the single-process app run it in-process)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from scheduler.domain.queueing import QueuePolicy
from scheduler.services.planning import PlacementSolver
from scheduler.services.ports import UnitOfWorkFactory
from scheduler.services.queue import (
    DrainResult,
    QueueOrder,
    drain_queue,
    queue_order,
    refresh_views,
)

logger = logging.getLogger(__name__)


class QueueDrainer:
    """``wake()`` from anywhere in the event loop; a burst of wakes costs one or two drains."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        policy: QueuePolicy,
        clock: Callable[[], datetime],
        solver: PlacementSolver | None = None,
        reset: timedelta = timedelta(seconds=2),
    ) -> None:
        self._uow_factory = uow_factory
        self._policy = policy
        self._clock = clock
        self._solver = solver
        self._reset = reset
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self.order: QueueOrder | None = None
        #: Tenants with waiting entries and devices some waiter could take, as of the last
        #: drain: a wake about others cannot help anyone and costs nothing.
        self._tenants: set[uuid.UUID] = set()
        self._devices: set[uuid.UUID] = set()
        self.granted_total = 0
        self.drains = 0
        #: Told each drain's seconds (the queue actor's metrics), if set.
        self.on_drain: Callable[[float], None] | None = None

    def wake(
        self,
        new_entries: bool = False,
        *,
        tenants: Collection[uuid.UUID] = (),
        devices: Collection[uuid.UUID] = (),
    ) -> None:
        """Drain soon, if it can matter (see ``QueueDispatcher``); new entries (and the safety
        sweep) always drain."""
        if not new_entries and self.order is not None:
            if not self.order.entries:
                return
            hinted = bool(tenants or devices)
            if hinted and self._tenants.isdisjoint(tenants) and self._devices.isdisjoint(devices):
                return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            try:
                await self.drain()
            except Exception:
                logger.exception("queue drain failed")

    async def drain(self, max_grants: int | None = None) -> int:
        async with self._lock:
            started = time.perf_counter()
            result: DrainResult = await drain_queue(
                self._uow_factory,
                now=self._clock(),
                policy=self._policy,
                max_grants=max_grants,
                solver=self._solver,
            )
            self.drains += 1
            self.granted_total += len(result.granted)
            self.order = await queue_order(
                self._uow_factory(), now=self._clock(), policy=self._policy
            )
            self._devices = await refresh_views(self._uow_factory, self.order, reset=self._reset)
            self._tenants = {e.tenant_id for e in self.order.entries}
            if self.on_drain is not None:
                self.on_drain(time.perf_counter() - started)
        return len(result.granted)

    async def refresh(self) -> QueueOrder:
        """Rebuild the order from the table (at start, or on demand)."""
        self.order = await queue_order(self._uow_factory(), now=self._clock(), policy=self._policy)
        return self.order

    async def idle(self) -> None:
        """Wait until no drain is running or pending (tests and shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)
