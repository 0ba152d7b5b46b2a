"""The work a node does for its devices once the database has decided: provision them, reset
them after a lease, report heartbeats, and reconcile anything a lost message left behind."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from scheduler.domain.fleet import DeviceStatus
from scheduler.services.fleet import (
    devices_awaiting_work,
    heartbeat_nodes,
    mark_devices_ready,
    registered_node_ids,
)
from scheduler.services.ports import DeviceDriver, QueueDispatcher, UnitOfWorkFactory

logger = logging.getLogger(__name__)


class NodeAgent:
    """Drives the devices of some nodes through a ``DeviceDriver``; never decides who gets a
    device (the allocation path never waits on it). Devices that became available wake the
    ``queue``: new ones for anyone, reset ones for the waiters that could take them."""

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
        self._in_flight: set[uuid.UUID] = set()

    @property
    def node_ids(self) -> list[uuid.UUID]:
        return sorted(self._node_ids)

    def adopt(self, node_id: uuid.UUID) -> None:
        self._node_ids.add(node_id)

    async def _drive(self, device_ids: Sequence[uuid.UUID], source: DeviceStatus) -> int:
        ids = [d for d in device_ids if d not in self._in_flight]
        if not ids:
            return 0
        self._in_flight.update(ids)
        try:
            async with self._uow_factory() as uow:
                devices = [d for d in await uow.devices.get_many(ids) if d.status is source]
            if not devices:
                return 0
            if source is DeviceStatus.PROVISIONING:
                await self._driver.provision(devices)
            else:
                await self._driver.reset(devices)
            ready = await mark_devices_ready(
                self._uow_factory(), [d.id for d in devices], source, now=self._clock()
            )
            if ready:
                provisioned = source is DeviceStatus.PROVISIONING
                self._queue.wake(devices=() if provisioned else [d.id for d in ready])
            return len(ready)
        finally:
            self._in_flight.difference_update(ids)

    async def provision(self, node_id: uuid.UUID, device_ids: Sequence[uuid.UUID]) -> int:
        self.adopt(node_id)
        return await self._drive(device_ids, DeviceStatus.PROVISIONING)

    async def reset(self, node_id: uuid.UUID, device_ids: Sequence[uuid.UUID]) -> int:
        self.adopt(node_id)
        return await self._drive(device_ids, DeviceStatus.RESETTING)

    async def adopt_registered(self) -> None:
        """Adopt every registered node this agent ``serves``: what it served before a restart,
        and nodes whose ``adopt`` call was lost."""
        if self._serves is not None:
            for node_id in await registered_node_ids(self._uow_factory()):
                if self._serves(node_id):
                    self.adopt(node_id)

    async def reconcile(self) -> int:
        """Finish any provisioning or reset that no message drove (lost call, restart), and
        report a heartbeat for the nodes."""
        await self.adopt_registered()
        if not self._node_ids:
            return 0
        nodes = self.node_ids
        await heartbeat_nodes(self._uow_factory(), nodes, now=self._clock())
        pending = await devices_awaiting_work(self._uow_factory(), nodes)
        done = 0
        for status in (DeviceStatus.PROVISIONING, DeviceStatus.RESETTING):
            ids = [d.id for d in pending if d.status is status]
            if ids:
                done += await self._drive(ids, status)
        return done


async def reconcile_forever(agent: NodeAgent, every_seconds: float) -> None:
    """``agent.reconcile()`` on a timer, outliving its failures (a database outage, say)."""
    while True:
        try:
            await agent.reconcile()
        except Exception:
            logger.exception("node reconcile failed")
        await asyncio.sleep(every_seconds)


class InProcessDeviceLifecycle:
    """Runs node agents inside this process: for a single-process deployment and for tests of
    the HTTP app without Ray. Same agent code as the Ray node actors."""

    def __init__(self, agent: NodeAgent) -> None:
        self.agent = agent
        self._tasks: set[asyncio.Task[int]] = set()

    async def provision(self, node_id: uuid.UUID, device_ids: Sequence[uuid.UUID]) -> None:
        await self.agent.provision(node_id, device_ids)

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
