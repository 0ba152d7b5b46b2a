"""The work a node does for its devices once the database has decided: provision them, reset
them after a lease, report heartbeats, and reconcile anything a lost message left behind."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from scheduler.domain.errors import NotSimulated
from scheduler.domain.fleet import DeviceStatus
from scheduler.services.command_path import Unit, run_unit
from scheduler.services.device_health import fail_device, recover_device
from scheduler.services.fleet import (
    devices_awaiting_work,
    heartbeat_nodes,
    mark_devices_ready,
    registered_node_ids,
)
from scheduler.services.ports import (
    DeviceDriver,
    FaultInjection,
    QueueDispatcher,
    UnitOfWorkFactory,
)

logger = logging.getLogger(__name__)

#: Failed resets in a row after which a device is reported failed.
RESET_FAILURES_TO_FAIL = 2


@dataclass
class _Waiter:
    """One ``provision``/``reset`` call waiting on a batch: its devices and its answer."""

    device_ids: frozenset[uuid.UUID]
    done: asyncio.Future[int]


@dataclass
class _Lane:
    """One node's work of one kind (provisioning or resets): the calls waiting for the next
    batch, and the task running batches while there are any."""

    waiting: list[_Waiter] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class NodeAgent:
    """Drives the devices of some nodes through a ``DeviceDriver``; never decides who gets a
    device (the allocation path never waits on it). Devices that became available wake the
    ``queue``: new ones for anyone, reset ones for the waiters that could take them.

    Work is batched per node and kind: a call finding its node idle starts a batch at once;
    calls arriving while a batch runs wait and go together as the next one. A batch costs one
    read, one driver call, one mark-ready transaction and one queue wake, however many calls
    and devices it holds."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        driver: DeviceDriver,
        clock: Callable[[], datetime],
        queue: QueueDispatcher,
        serves: Callable[[uuid.UUID], bool] | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._driver = driver
        self._clock = clock
        self._queue = queue
        self._serves = serves
        self._node_ids: set[uuid.UUID] = set()
        # Devices a running batch read in ``source`` status and is driving now: a call asking
        # for one of them again leaves it out (it is not driven twice). Asked for before that
        # read, a device joins the next batch too, whose own read then finds it available.
        self._in_flight: set[uuid.UUID] = set()
        self._lanes: dict[tuple[uuid.UUID, DeviceStatus], _Lane] = {}
        self._reset_failures: Counter[uuid.UUID] = Counter()
        self._silent: set[uuid.UUID] = set()
        #: The effects of the reports this agent makes (a recovered device's reset) run here.
        self._own_lifecycle = InProcessDeviceLifecycle(self)

    @property
    def node_ids(self) -> list[uuid.UUID]:
        """The nodes it serves (in no order: thousands for a shard, sorted by nobody)."""
        return list(self._node_ids)

    def adopt(self, node_id: uuid.UUID) -> None:
        self._node_ids.add(node_id)

    async def _drive(
        self, node_id: uuid.UUID, device_ids: Sequence[uuid.UUID], source: DeviceStatus
    ) -> int:
        """Queue ``device_ids`` for the next batch of ``node_id``'s ``source`` work (starting
        it now if none runs) and say how many of them that batch made available."""
        ids = frozenset(device_ids) - self._in_flight
        if not ids:
            return 0
        key = (node_id, source)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
        waiter = _Waiter(ids, asyncio.get_running_loop().create_future())
        lane.waiting.append(waiter)
        if lane.task is None:
            lane.task = asyncio.create_task(self._run_lane(key, lane))
        return await waiter.done

    async def _run_lane(self, key: tuple[uuid.UUID, DeviceStatus], lane: _Lane) -> None:
        try:
            while lane.waiting:
                batch, lane.waiting = lane.waiting, []
                await self._run_batch(key[1], batch)
        finally:
            for waiter in lane.waiting:  # only left when this task was cancelled
                waiter.done.cancel()
            lane.waiting = []
            lane.task = None
            if self._lanes.get(key) is lane:
                del self._lanes[key]

    async def _run_batch(self, source: DeviceStatus, batch: list[_Waiter]) -> None:
        """Run one batch and answer its callers; a failure fails them all (the devices stay
        in ``source`` status for the reconcile to retry)."""
        ids = list(dict.fromkeys(d for waiter in batch for d in waiter.device_ids))
        try:
            ready = await self._ready_devices(ids, source)
        except asyncio.CancelledError:
            for waiter in batch:
                waiter.done.cancel()
            raise
        except Exception as exc:
            for waiter in batch:
                if not waiter.done.done():
                    waiter.done.set_exception(exc)
            return
        for waiter in batch:
            if not waiter.done.done():  # a caller cancelled meanwhile
                waiter.done.set_result(len(waiter.device_ids & ready))

    async def _ready_devices(
        self, device_ids: list[uuid.UUID], source: DeviceStatus
    ) -> set[uuid.UUID]:
        """Drive those of ``device_ids`` still in ``source`` status (a stale message must
        never touch a device since reset and leased again) and make them available."""
        async with self._uow_factory() as uow:
            devices = [d for d in await uow.devices.get_many(device_ids) if d.status is source]
        devices = [d for d in devices if d.id not in self._in_flight]
        if not devices:
            return set()
        driving = {d.id for d in devices}
        self._in_flight.update(driving)
        try:
            failed: set[uuid.UUID] = set()
            if source is DeviceStatus.PROVISIONING:
                await self._driver.provision(devices)
            else:
                failed = set(await self._driver.reset(devices))
            healthy = [d.id for d in devices if d.id not in failed]
            ready = (
                await mark_devices_ready(self._uow_factory(), healthy, source, now=self._clock())
                if healthy
                else []
            )
        finally:
            self._in_flight.difference_update(driving)
        for device_id in healthy:
            self._reset_failures.pop(device_id, None)
        if ready:
            provisioned = source is DeviceStatus.PROVISIONING
            self._queue.wake(devices=() if provisioned else [d.id for d in ready])
        if failed:
            await self._count_failed_resets(failed)
        return {d.id for d in ready}

    async def _count_failed_resets(self, device_ids: set[uuid.UUID]) -> None:
        """A device whose reset failed stays resetting (the reconcile tries again); after
        ``RESET_FAILURES_TO_FAIL`` failures in a row it is reported failed."""
        self._reset_failures.update(device_ids)
        lost = [d for d in device_ids if self._reset_failures[d] >= RESET_FAILURES_TO_FAIL]
        if lost:
            await self.report(lost, "failed", "its reset failed twice")
            for device_id in lost:
                del self._reset_failures[device_id]

    async def report(self, device_ids: Sequence[uuid.UUID], status: str, reason: str) -> None:
        """Report the devices ``failed`` or ``recovered``, as anyone who learns of it does
        (``POST /scheduler/devices/{id}/report``): their leases relocated, or a reset."""

        async def record(unit: Unit) -> None:
            for device in await unit.uow.devices.get_many(device_ids):
                if status == "failed":
                    await fail_device(unit, device, reason)
                else:
                    await recover_device(unit, device, reason)

        await run_unit(
            self._uow_factory,
            record,
            now=self._clock(),
            lifecycle=self._own_lifecycle,
            queue=self._queue,
        )

    async def simulate(self, node_id: uuid.UUID, device_id: uuid.UUID | None, action: str) -> None:
        """With a driver that can inject faults: fail or recover one device (and report it,
        as a real agent that noticed would), or a whole node (its heartbeats stop).

        Raises:
            NotSimulated: the driver drives real phones.
        """
        if not isinstance(self._driver, FaultInjection):
            raise NotSimulated("only the simulated driver can fail devices and nodes on demand")
        self.adopt(node_id)
        if device_id is None:
            if action == "fail":
                self._silent.add(node_id)
            else:
                self._silent.discard(node_id)
            return
        if action == "fail":
            self._driver.break_device(device_id)
            await self.report([device_id], "failed", "simulated failure")
        else:
            self._driver.heal_device(device_id)
            await self.report([device_id], "recovered", "simulated recovery")

    async def provision(self, node_id: uuid.UUID, device_ids: Sequence[uuid.UUID]) -> int:
        """Provision these devices of ``node_id``; how many of them this made available."""
        self.adopt(node_id)
        return await self._drive(node_id, device_ids, DeviceStatus.PROVISIONING)

    async def reset(self, node_id: uuid.UUID, device_ids: Sequence[uuid.UUID]) -> int:
        """Reset these devices of ``node_id`` (those still resetting); how many of them this
        made available."""
        self.adopt(node_id)
        return await self._drive(node_id, device_ids, DeviceStatus.RESETTING)

    async def adopt_registered(self) -> None:
        """Adopt every registered node this agent ``serves``: what it served before a restart,
        and nodes whose ``adopt`` call was lost."""
        if self._serves is not None:
            for node_id in await registered_node_ids(self._uow_factory()):
                if self._serves(node_id):
                    self.adopt(node_id)

    @property
    def _alive(self) -> list[uuid.UUID]:
        """The nodes that heartbeat: all but those failed on demand (``simulate``)."""
        if not self._silent:
            return list(self._node_ids)
        return [n for n in self._node_ids if n not in self._silent]

    async def heartbeat(self) -> None:
        """Tell the database the agent's nodes are alive (silent ones go offline)."""
        if self._alive:
            await heartbeat_nodes(self._uow_factory(), self._alive, now=self._clock())

    async def reconcile(self) -> int:
        """Finish any provisioning or reset that no message drove (lost call, restart), and
        report a heartbeat for the nodes."""
        await self.adopt_registered()
        if not self._node_ids:
            return 0
        nodes = self.node_ids
        if self._alive:
            await heartbeat_nodes(self._uow_factory(), self._alive, now=self._clock())
        pending = await devices_awaiting_work(self._uow_factory(), nodes)
        work: dict[tuple[uuid.UUID, DeviceStatus], list[uuid.UUID]] = {}
        for device in pending:
            work.setdefault((device.node_id, device.status), []).append(device.id)
        done = await asyncio.gather(
            *(self._drive(node, ids, status) for (node, status), ids in work.items()),
            return_exceptions=True,
        )
        failures = [r for r in done if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        return sum(r for r in done if isinstance(r, int))


async def reconcile_forever(
    agent: NodeAgent, every_seconds: float, heartbeat_seconds: float | None = None
) -> None:
    """``agent.reconcile()`` every ``every_seconds`` and a heartbeat at least every
    ``heartbeat_seconds`` (a reconcile sends one), outliving failures (a database outage)."""
    loop = asyncio.get_running_loop()
    heartbeat = min(heartbeat_seconds or every_seconds, every_seconds)
    next_reconcile = loop.time()
    while True:
        try:
            if loop.time() >= next_reconcile:
                next_reconcile = loop.time() + every_seconds
                await agent.reconcile()
            else:
                await agent.heartbeat()
        except Exception:
            logger.exception("node reconcile failed")
        await asyncio.sleep(max(min(heartbeat, next_reconcile - loop.time()), 0.0))


class InProcessDeviceLifecycle:
    """Runs node agents inside this process: for a single-process deployment and for tests of
    the HTTP app without Ray. Same agent code as the Ray node actors."""

    def __init__(self, agent: NodeAgent) -> None:
        self.agent = agent
        self._tasks: set[asyncio.Task[int]] = set()

    async def provision(self, node_id: uuid.UUID, device_ids: Sequence[uuid.UUID]) -> None:
        await self.agent.provision(node_id, device_ids)

    async def simulate(self, node_id: uuid.UUID, device_id: uuid.UUID | None, action: str) -> None:
        await self.agent.simulate(node_id, device_id, action)

    def start_agent(self, node_id: uuid.UUID, host: str) -> None:
        self.agent.adopt(node_id)  # this one agent serves every node, whatever its host

    def request_reset(self, node_id: uuid.UUID, device_ids: Sequence[uuid.UUID]) -> None:
        task = asyncio.get_running_loop().create_task(self.agent.reset(node_id, device_ids))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[int]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("device reset failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for every reset started so far (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
