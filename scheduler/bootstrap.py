"""The composition root: builds every client and adapter of a process from its settings.

Nothing here runs at import time; each entrypoint (Serve replica, actor, CLI, test) calls
``build_services`` once and closes what it built with ``Services.close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from placement.solve import solve
from scheduler.adapters.jwt_verifier import JwtVerifier
from scheduler.adapters.pg_changes import PgChangeFeed
from scheduler.adapters.rabbitmq_events import FanOutEventStream, RabbitEventPublisher
from scheduler.adapters.recent_candidates import RecentCandidates
from scheduler.adapters.redis_events import RedisEventStream
from scheduler.adapters.redis_rate_limits import RedisRateLimiter
from scheduler.adapters.simulated_driver import SimulatedDeviceDriver
from scheduler.adapters.sql_unit_of_work import Database, SqlUnitOfWork
from scheduler.config import Settings
from scheduler.domain.platform_identity import admin_roles_of
from scheduler.domain.queueing import QueueLimits, QueuePolicy
from scheduler.domain.rate_limits import RateLimit
from scheduler.domain.reservations import BookingRules
from scheduler.services.command_path import CommandConfig, CommandPath, StandingRules
from scheduler.services.fleet import FleetTotal
from scheduler.services.handlers import ROUTES
from scheduler.services.node_agent import InProcessDeviceLifecycle, NodeAgent
from scheduler.services.platform_auth import PlatformAuthenticator, default_tenant_of
from scheduler.services.ports import (
    ChangeFeed,
    DeviceDriver,
    DeviceLifecycle,
    EventStream,
    QueueDispatcher,
    RateLimiter,
    UnitOfWork,
    UnitOfWorkFactory,
)
from scheduler.services.queue_dispatch import QueueDrainer
from scheduler.services.tenancy import TokenAuthenticator
from scheduler.services.user_standing import SuspendedUsers

#: How long readiness waits for each backing service.
READINESS_SECONDS = 1.5
#: The exit code of a process the fault hook killed.
CRASH_EXIT_CODE = 75


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    """Every port of one process, wired to its adapters."""

    settings: Settings
    database: Database
    redis: Redis
    events: EventStream
    lifecycle: DeviceLifecycle
    queue: QueueDispatcher
    config: CommandConfig
    authenticator: PlatformAuthenticator
    commands: CommandPath
    changes: PgChangeFeed
    rate_limiter: RateLimiter
    clock: Callable[[], datetime]
    suspended_users: SuspendedUsers
    available_total: FleetTotal = field(default_factory=FleetTotal)
    recent_candidates: RecentCandidates | None = None
    platform_events: RabbitEventPublisher | None = None

    @property
    def default_rate_limit(self) -> RateLimit:
        return RateLimit(self.settings.rate_limit_rps, self.settings.rate_limit_burst)

    def uow(self) -> UnitOfWork:
        return SqlUnitOfWork(self.database, self.recent_candidates)

    async def readiness(self) -> dict[str, bool]:
        """Whether PostgreSQL and Redis answer, both asked at once and each given
        ``READINESS_SECONDS``: a probe answers within that, up or down."""

        async def postgres() -> bool:
            async with self.database.connection() as connection:
                await connection.execute("SELECT 1")
            return True

        async def redis() -> bool:
            return bool(await self.redis.ping())

        async def answered(check: Callable[[], Awaitable[bool]]) -> bool:
            with contextlib.suppress(Exception):
                return await asyncio.wait_for(check(), READINESS_SECONDS)
            return False

        up = await asyncio.gather(answered(postgres), answered(redis))
        return {"postgres": up[0], "redis": up[1]}

    async def close(self) -> None:
        if self.platform_events is not None:
            await self.platform_events.close()
        await self.changes.close()
        await self.redis.aclose()
        await self.database.close()


def exit_after_commit(command_names: list[str]) -> Callable[[object], None] | None:
    """The crash tests' fault hook: the process dies (``os._exit``, no cleanup) right after
    the commit of a command named in ``command_names``, before its effects and its answer."""
    if not command_names:
        return None
    names = frozenset(command_names)

    def hook(command: object) -> None:
        if type(command).__name__ in names:
            os._exit(CRASH_EXIT_CODE)

    return hook


def build_driver(settings: Settings) -> DeviceDriver:
    return SimulatedDeviceDriver(settings.device_provision_seconds, settings.device_reset_seconds)


def queue_policy(settings: Settings) -> QueuePolicy:
    return QueuePolicy(
        aging_per_minute=settings.queue_aging_per_minute,
        preempting_tiers=frozenset(settings.preempting_tiers),
        preemptible_tiers=frozenset(settings.preemptible_tiers),
        preemption_grace=timedelta(seconds=settings.preemption_grace_seconds),
    )


def platform_authenticator(
    settings: Settings, tokens: TokenAuthenticator, uow: UnitOfWorkFactory
) -> PlatformAuthenticator:
    """PhoneFleet's tokens, and the platform's JWTs when a key is configured."""
    verifier = None
    if settings.jwt_secret or settings.jwt_public_key:
        verifier = JwtVerifier(
            secret=settings.jwt_secret or None,
            public_key=None if settings.jwt_secret else settings.jwt_public_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
    return PlatformAuthenticator(
        tokens,
        uow,
        utc_now,
        verifier=verifier,
        admin_roles=admin_roles_of(settings.jwt_admin_roles),
        new_tenant=default_tenant_of(settings.jwt_default_quota),
    )


def build_services(
    settings: Settings,
    lifecycle: DeviceLifecycle | None = None,
    queue: Callable[[ChangeFeed], QueueDispatcher] | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Services:
    """Wire a process. Without ``lifecycle`` and ``queue`` (a dispatcher made from the
    process's change feed), the node agents and the queue drains run in this process (a
    single-process deployment, and the tests of the app)."""
    database_url, redis_url = settings.require_urls()
    database = Database(
        database_url,
        max_size=settings.db_pool_size,
        statement_timeout_seconds=settings.db_statement_timeout_seconds,
        lock_timeout_seconds=settings.db_lock_timeout_seconds,
    )
    redis = Redis.from_url(
        redis_url, decode_responses=True, socket_timeout=2.0, socket_connect_timeout=1.0
    )
    policy = queue_policy(settings)
    changes = PgChangeFeed(database_url)

    stream = RedisEventStream(redis, settings.events_stream, settings.events_stream_maxlen)
    platform_events = None
    if settings.rabbitmq_url:
        platform_events = RabbitEventPublisher(settings.rabbitmq_url, settings.rabbitmq_exchange)
    seconds = settings.candidate_reuse_seconds
    recent = RecentCandidates(seconds) if seconds > 0 else None

    def uow() -> UnitOfWork:
        return SqlUnitOfWork(database, recent)

    reset = timedelta(seconds=settings.device_reset_seconds)
    dispatcher = queue(changes) if queue else QueueDrainer(uow, policy, clock, solve, reset)
    lifecycle = lifecycle or InProcessDeviceLifecycle(
        NodeAgent(uow, build_driver(settings), clock, dispatcher, serves=lambda _: True)
    )
    booking_rules = BookingRules(
        horizon=timedelta(days=settings.booking_horizon_days),
        prewarm=timedelta(seconds=settings.prewarm_seconds),
        max_pending=settings.booking_cap_per_tenant,
        check_in_minutes=settings.booking_check_in_minutes,
    )
    config = CommandConfig(
        queue_policy=policy,
        queue_limits=QueueLimits(settings.queue_cap_per_tenant, settings.queue_cap_total),
        booking_rules=booking_rules,
        reset=reset,
        default_host=settings.adb_host,
        solver=solve,
        standing=StandingRules(
            quota_grace=timedelta(seconds=settings.quota_grace_seconds),
            overdue_grace=timedelta(seconds=settings.overdue_grace_seconds),
            payment_failures=settings.payment_failures_before_suspension,
        ),
    )
    commands = CommandPath(
        uow,
        ROUTES,
        config=config,
        lifecycle=lifecycle,
        queue=dispatcher,
        clock=clock,
        after_commit=exit_after_commit(settings.fault_exit_after_commit),
    )
    return Services(
        settings=settings,
        database=database,
        redis=redis,
        events=FanOutEventStream(stream, platform_events) if platform_events else stream,
        lifecycle=lifecycle,
        queue=dispatcher,
        config=config,
        authenticator=platform_authenticator(
            settings, TokenAuthenticator(uow, settings.token_cache_seconds, changes, clock), uow
        ),
        commands=commands,
        changes=changes,
        rate_limiter=RedisRateLimiter(redis, f"phonefleet:rate:{settings.events_stream}"),
        clock=clock,
        suspended_users=SuspendedUsers(uow, changes, settings.token_cache_seconds),
        recent_candidates=recent,
        platform_events=platform_events,
    )
