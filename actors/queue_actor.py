"""``phonefleet-queue``: the named actor that drains the wait queue.

It keeps the queue's order in memory (rebuilt from the table when it starts, refreshed by
every drain) and drains when woken: by a release, an expiry, a device finishing its reset,
new devices, a raised quota or a new entry. Wakes that arrive during a drain coalesce into one
more drain. PostgreSQL stays the truth: a restarted actor loses nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection
from typing import Any

import ray

from actors.metrics import DrainMetrics
from actors.names import NAMESPACE, QUEUE
from actors.node_actor import RayDeviceLifecycle
from scheduler.bootstrap import build_services
from scheduler.config import Settings
from scheduler.services.ports import ChangeFeed
from scheduler.services.queue_dispatch import QueueDrainer


class QueueActor:
    def __init__(self, settings: dict[str, Any]) -> None:
        self._settings = Settings(**settings)
        # Without a queue given, the services drain in this process: that is this actor.
        self._services = build_services(self._settings, RayDeviceLifecycle(self._settings))
        assert isinstance(self._services.queue, QueueDrainer)
        self._drainer: QueueDrainer = self._services.queue
        self._drainer.on_drain = DrainMetrics().observe
        self._started = asyncio.get_event_loop().create_task(self._start())

    async def _start(self) -> None:
        await self._drainer.refresh()
        self._drainer.wake()

    def wake(
        self,
        new_entries: bool = False,
        tenants: Collection[uuid.UUID] = (),
        devices: Collection[uuid.UUID] = (),
    ) -> None:
        self._drainer.wake(new_entries, tenants=tenants, devices=devices)

    async def drain(self, max_grants: int | None = None) -> int:
        return await self._drainer.drain(max_grants)

    async def order(self) -> list[str]:
        """The waiting entries' ids, first to serve first, as of the last drain."""
        await self._started
        order = self._drainer.order
        return [str(e.id) for e in order.entries] if order else []

    async def status(self) -> dict[str, Any]:
        return {"drains": self._drainer.drains, "granted": self._drainer.granted_total}


RemoteQueueActor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(QueueActor)


def queue_actor_handle(settings: Settings) -> Any:
    """The queue actor of this cluster, created (detached) on first use."""
    return RemoteQueueActor.options(  # type: ignore[attr-defined]
        name=QUEUE, namespace=NAMESPACE, get_if_exists=True, lifetime="detached"
    ).remote(settings.for_workers())


class RayQueueDispatcher:
    """``QueueDispatcher`` over the queue actor: wakes are fire-and-forget, and skipped (no
    actor call) while the change feed says the last drain left nobody waiting, unless they
    bring new entries."""

    def __init__(self, settings: Settings, changes: ChangeFeed) -> None:
        self._settings = settings
        self._changes = changes
        self._handle: Any = None

    def _actor(self) -> Any:
        if self._handle is None:
            self._handle = queue_actor_handle(self._settings)
        return self._handle

    def wake(
        self,
        new_entries: bool = False,
        *,
        tenants: Collection[uuid.UUID] = (),
        devices: Collection[uuid.UUID] = (),
    ) -> None:
        if not new_entries and self._changes.queue_empty:
            return
        try:
            self._actor().wake.remote(new_entries, list(tenants), list(devices))
        except Exception:
            self._handle = None  # the housekeeper's safety sweep wakes it again

    async def drain(self, max_grants: int | None = None) -> int:
        return int(await self._actor().drain.remote(max_grants))
