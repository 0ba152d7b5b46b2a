"""``phonefleet-housekeeper``: the named, detached singleton that runs the periodic jobs.

Created with get-if-exists and restarted by Ray when it dies. Even if two are alive (a
split-brain after a restart), the job ledger makes each tick run once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import timedelta
from typing import Any

import ray

from actors.metrics import GAUGE_SECONDS, FleetMetrics, RelayedSince
from actors.names import HOUSEKEEPER, NAMESPACE
from actors.node_actor import RayDeviceLifecycle
from actors.queue_actor import RayQueueDispatcher
from scheduler.bootstrap import build_services, utc_now
from scheduler.config import Settings
from scheduler.services.housekeeping import Housekeeper, HousekeeperConfig
from scheduler.services.statistics import fleet_gauges

logger = logging.getLogger(__name__)


def housekeeper_config(settings: Settings) -> HousekeeperConfig:
    return HousekeeperConfig(
        relay_seconds=settings.outbox_relay_seconds,
        max_sleep_seconds=settings.housekeeper_max_sleep_seconds,
        retention_seconds=settings.job_tick_retention_seconds,
        queue_sweep_seconds=settings.queue_sweep_seconds,
        warning_lead_seconds=settings.lease_warning_seconds,
        outbox_retention_hours=settings.outbox_retention_hours,
        idempotency_retention_hours=settings.idempotency_retention_hours,
        node_offline_after_seconds=settings.node_offline_after_seconds,
    )


class HousekeeperActor:
    def __init__(self, settings: dict[str, Any]) -> None:
        self._settings = Settings(**settings)
        lifecycle = RayDeviceLifecycle(self._settings)
        self._services = build_services(
            self._settings, lifecycle, lambda changes: RayQueueDispatcher(self._settings, changes)
        )
        queue = self._services.queue
        self._lifecycle = lifecycle
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._housekeeper = Housekeeper(
            self._services.uow,
            self._services.events,
            lifecycle,
            queue,
            housekeeper_config(self._settings),
            owner,
        )
        self._metrics = FleetMetrics()
        self._relayed = RelayedSince()
        self._tick_lag = 0.0
        loop = asyncio.get_event_loop()
        self._task = loop.create_task(self._run())
        self._gauges = loop.create_task(self._refresh_metrics())

    async def _run(self) -> None:
        try:
            async with self._services.uow() as uow:
                nodes = await uow.nodes.list()
            self._lifecycle.ensure_actors([(n.id, n.host) for n in nodes])
        except Exception:
            logger.exception("could not start the node actors")
        due = None
        while True:
            started = utc_now()
            if due is not None:
                self._tick_lag = (started - due).total_seconds()
            await self._housekeeper.tick(started)
            wait = self._housekeeper.seconds_until_next(utc_now())
            due = utc_now() + timedelta(seconds=wait)
            await asyncio.sleep(wait)

    async def _refresh_metrics(self) -> None:
        """The metrics' gauges from the database, and the lease events relayed since the last
        refresh, every ``GAUGE_SECONDS``."""
        silent_after = timedelta(seconds=self._settings.node_offline_after_seconds)
        while True:
            try:
                gauges = await fleet_gauges(self._services.uow(), utc_now(), silent_after)
                self._metrics.publish(gauges)
                self._metrics.count_relayed(self._relayed.new(self._housekeeper.relayed_by_type))
                self._metrics.tick_lag(self._tick_lag)
            except Exception:
                logger.exception("metrics refresh failed")
            await asyncio.sleep(GAUGE_SECONDS)

    async def status(self) -> dict[str, Any]:
        return {
            "expired": self._housekeeper.expired_total,
            "relayed": self._housekeeper.relayed_total,
            "running": not self._task.done(),
        }


RemoteHousekeeper = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(HousekeeperActor)


def ensure_housekeeper(settings: Settings) -> Any:
    """The housekeeper of this cluster, created if it does not exist yet."""
    return RemoteHousekeeper.options(  # type: ignore[attr-defined]
        name=HOUSEKEEPER,
        namespace=NAMESPACE,
        get_if_exists=True,
        lifetime="detached",
    ).remote(settings.for_workers())
