"""The composition root: builds every client and adapter of a process from its settings.

Nothing here runs at import time; each entrypoint (Serve replica, actor, CLI, test) calls
``build_services`` once and closes what it built with ``Services.close``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from scheduler.adapters.redis_events import RedisEventStream
from scheduler.adapters.simulated_driver import SimulatedDeviceDriver
from scheduler.adapters.sql_unit_of_work import Database, SqlUnitOfWork
from scheduler.config import Settings
from scheduler.services.node_agent import InProcessDeviceLifecycle, NodeAgent
from scheduler.services.ports import DeviceDriver, DeviceLifecycle, UnitOfWork
from scheduler.services.tenancy import TokenAuthenticator


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    """Every port of one process, wired to its adapters."""

    settings: Settings
    database: Database
    redis: Redis
    events: RedisEventStream
    lifecycle: DeviceLifecycle
    authenticator: TokenAuthenticator
    clock: Callable[[], datetime]

    def uow(self) -> UnitOfWork:
        return SqlUnitOfWork(self.database)

    async def readiness(self) -> dict[str, bool]:
        """Whether PostgreSQL and Redis answer."""
        checks = {"postgres": False, "redis": False}
        with contextlib.suppress(Exception):
            async with self.database.connection() as connection:
                await connection.execute("SELECT 1")
            checks["postgres"] = True
        with contextlib.suppress(Exception):
            checks["redis"] = bool(await self.redis.ping())
        return checks

    async def close(self) -> None:
        await self.redis.aclose()
        await self.database.close()


def build_driver(settings: Settings) -> DeviceDriver:
    return SimulatedDeviceDriver(settings.device_provision_seconds, settings.device_reset_seconds)


def build_services(
    settings: Settings,
    lifecycle: DeviceLifecycle | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Services:
    """Wire a process. Without ``lifecycle`` the node agents run in this process."""
    database_url, redis_url = settings.require_urls()
    database = Database(database_url, max_size=settings.db_pool_size)
    redis = Redis.from_url(redis_url, decode_responses=True)

    def uow() -> UnitOfWork:
        return SqlUnitOfWork(database)

    return Services(
        settings=settings,
        database=database,
        redis=redis,
        events=RedisEventStream(redis, settings.events_stream, settings.events_stream_maxlen),
        lifecycle=lifecycle
        or InProcessDeviceLifecycle(NodeAgent(uow, build_driver(settings), clock)),
        authenticator=TokenAuthenticator(uow, settings.token_cache_seconds),
        clock=clock,
    )
