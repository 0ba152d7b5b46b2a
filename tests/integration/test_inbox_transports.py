"""The inbox's transports against the machine's RabbitMQ and Redis (issue 12 §5): a message
published is applied within 5 s (one usage record per ended lease), a copy is applied once, a
poison message reaches the dead letters with its reason, and a consumer killed after its
commit but before its acknowledgement leaves the message to the next one, which applies
nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import httpx
import pytest

from scheduler.adapters.rabbitmq_inbox import RabbitInbox
from scheduler.adapters.redis_inbox import GROUP, RedisInbox
from scheduler.bootstrap import Services
from scheduler.services.inbox import Inbox, Received
from tests.builders import leases_of, new_pool, run_sql, unique
from tests.integration.test_platform_events import CONFIGURED, RABBITMQ_URL

pytestmark = pytest.mark.integration


@pytest.fixture
def inbox(services: Services) -> Inbox:
    return Inbox(services.commands, services.uow, services.clock, max_attempts=3)


@pytest.fixture
async def broker() -> AsyncIterator[tuple[aio_pika.abc.AbstractChannel, str, str]]:
    """A channel, and an exchange and dead-letter exchange of this test's own."""
    try:
        connection = await aio_pika.connect_robust(RABBITMQ_URL, timeout=5)
    except (OSError, aio_pika.exceptions.AMQPError):
        if CONFIGURED:
            raise
        pytest.skip("no RabbitMQ at 127.0.0.1:5672 (set PHONEFLEET_TEST_RABBITMQ_URL)")
    suffix = uuid.uuid4().hex[:8]
    channel = await connection.channel()
    try:
        yield channel, f"test.events.{suffix}", f"test.dlx.{suffix}"
    finally:
        for name in (f"test.events.{suffix}", f"test.dlx.{suffix}"):
            with contextlib.suppress(Exception):
                await channel.exchange_delete(name)
        await connection.close()


async def _ended_with_records(services: Services, lease_ids: list[str]) -> list[tuple[str, int]]:
    rows = await run_sql(
        services,
        "SELECT a.status, (SELECT count(*) FROM usage_records u WHERE u.allocation_id = a.id)"
        " AS records FROM allocations a WHERE a.id = ANY(%(ids)s)",
        {"ids": [uuid.UUID(i) for i in lease_ids]},
    )
    return [(r["status"], r["records"]) for r in rows]


async def _within(seconds: float, done: Callable[[], Awaitable[bool]]) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await done():
        assert asyncio.get_running_loop().time() < deadline, "not within the time"
        await asyncio.sleep(0.05)


def _consumer(receive: Any, exchange: str, dlx: str, queue: str) -> RabbitInbox:
    return RabbitInbox(
        RABBITMQ_URL,
        receive,
        exchange=exchange,
        dead_letter_exchange=dlx,
        queue=queue,
        retry_pause_seconds=0.05,
    )


@contextlib.asynccontextmanager
async def running(consumer: RabbitInbox, channel: Any, queue: str) -> AsyncIterator[RabbitInbox]:
    """``consumer`` consuming until the block ends, its queues deleted after."""
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(consumer.ready.wait(), 5)
        yield consumer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            await channel.queue_delete(queue)
            await channel.queue_delete(f"{queue}.dead")


async def _publish(channel: Any, exchange: str, key: str, body: Any, message_id: str) -> None:
    target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    await target.publish(
        aio_pika.Message(payload, message_id=message_id, delivery_mode=2), routing_key=key
    )


async def test_rabbitmq_messages_are_applied_once_and_poison_is_dead_lettered(
    broker: Any, inbox: Inbox, client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    channel, exchange, dlx = broker
    queue = unique("test.inbox")
    async with running(_consumer(inbox.receive, exchange, dlx, queue), channel, queue) as consumer:
        user = unique("platform-user")
        leases = await leases_of(client, admin_token, user, 2)
        body = {"userId": user, "reason": "fraud"}
        await _publish(channel, exchange, "user.suspended", body, f"m-{user}")
        await _publish(channel, exchange, "user.suspended", body, f"m-{user}")  # redelivered
        await _publish(channel, exchange, "user.suspended", b"{broken", f"p-{user}")

        async def all_handled() -> bool:
            return consumer.handled >= 3

        await _within(5, all_handled)
        assert await _ended_with_records(services, leases) == [("revoked", 1)] * 2
        dead = await channel.get_queue(f"{queue}.dead")
        message = await dead.get(timeout=5)
        assert message.message_id == f"p-{user}"
        assert "JSON" in message.headers["x-phonefleet-reason"]
        await message.ack()


async def test_a_consumer_killed_after_its_commit_leaves_the_message_applied_once(
    broker: Any, inbox: Inbox, client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    """The first consumer commits the message and dies before acknowledging it; the broker
    hands it to the next consumer, which finds it applied."""
    channel, exchange, dlx = broker
    queue = unique("test.inbox")
    committed = asyncio.Event()

    async def commit_then_die(*args: Any) -> Received:
        await inbox.receive(*args)
        committed.set()
        await asyncio.Event().wait()  # killed here, before the ack
        raise AssertionError("unreachable")

    dying = _consumer(commit_then_die, exchange, dlx, queue)
    first = asyncio.create_task(dying.run())
    user = unique("platform-user")
    leases = await leases_of(client, admin_token, user, 2)
    await asyncio.wait_for(dying.ready.wait(), 5)
    await _publish(channel, exchange, "user.deleted", {"userId": user}, f"k-{user}")
    await asyncio.wait_for(committed.wait(), 5)
    first.cancel()  # its connection closes: the unacknowledged message goes back
    with contextlib.suppress(asyncio.CancelledError):
        await first

    outcomes: list[Received] = []

    async def record(*args: Any) -> Received:
        outcomes.append(await inbox.receive(*args))
        return outcomes[-1]

    async with running(_consumer(record, exchange, dlx, queue), channel, queue):

        async def redelivered() -> bool:
            return bool(outcomes)

        await _within(5, redelivered)
        assert outcomes[0].detail.startswith("duplicate"), outcomes
        assert await _ended_with_records(services, leases) == [("revoked", 1)] * 2


async def test_the_redis_stream_inbox_applies_once_retries_and_dead_letters(
    inbox: Inbox, client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    stream = f"phonefleet:test-inbox:{uuid.uuid4().hex[:8]}"
    redis = services.redis
    reader = RedisInbox(
        redis, stream, inbox.receive, "c1", retry_idle_seconds=0.0, block_seconds=0.1
    )
    user = unique("platform-user")
    leases = await leases_of(client, admin_token, user, 2)
    data = json.dumps({"userId": user})
    try:
        await reader._ensure_group()
        await redis.xadd(stream, {"type": "user.suspended", "data": data})
        await redis.xadd(stream, {"type": "user.suspended", "data": data})  # the same, again
        await redis.xadd(stream, {"type": "user.suspended", "data": "{broken", "id": "poison-1"})
        await reader.read_once()

        assert reader.handled == 3
        assert await _ended_with_records(services, leases) == [("revoked", 1)] * 2
        assert (await redis.xpending(stream, GROUP))["pending"] == 0
        (dead,) = await redis.xrange(f"{stream}:dead")
        assert dead[1]["id"] == "poison-1" and "JSON" in dead[1]["reason"]
    finally:
        await redis.delete(stream, f"{stream}:dead")


async def test_every_key_the_inbox_binds_arrives_over_rabbitmq_and_is_applied(
    broker: Any, inbox: Inbox, client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    """One message per routing key (both spellings), each applied within 5 s."""
    channel, exchange, dlx = broker
    queue = unique("test.inbox")
    pool = await new_pool(client, admin_token, devices=1)
    device = pool.devices[0]["id"]
    user = unique("platform-user")
    bodies = {
        "user.deleted": {"userId": user},
        "user.suspended": {"userId": user, "reason": "r"},
        "user.activated": {"userId": user},
        "device.failed": {"deviceId": device, "reason": "adb lost"},
        "device.deleted": {"deviceId": device},
        "device.status_changed": {"deviceId": device, "oldStatus": "error", "newStatus": "running"},
        "device.maintenance": {"deviceId": device, "maintenanceType": "firmware"},
        "user.quota_updated": {"userId": user, "newQuota": {"maxDevices": 3}},
        "quota.updated": {"userId": user, "newQuota": {"maxDevices": 4}},
        "user.quota_exceeded": {"userId": user, "quotaType": "devices", "limit": 4},
        "quota.exceeded": {"userId": user, "quotaType": "devices", "limit": 5},
        "billing.overdue": {"userId": user, "overdueDays": 3},
        "billing.invoice_overdue": {"userId": user},
        "billing.payment_failed": {"userId": user, "reason": "declined"},
        "billing.payment_success": {"userId": user},
        "billing.recharged": {"userId": user},
        "billing.balance_low": {"userId": user},
        "billing.low_balance": {"userId": user},
    }
    from scheduler.domain.inbox import ROUTING_KEYS

    assert set(bodies) == set(ROUTING_KEYS)
    ids = {key: unique("every") for key in bodies}
    async with running(_consumer(inbox.receive, exchange, dlx, queue), channel, queue):
        for key, body in bodies.items():
            await _publish(channel, exchange, key, body, ids[key])

        async def all_applied() -> bool:
            rows = await run_sql(
                services,
                "SELECT count(*) AS n FROM inbox_messages WHERE message_id = ANY(%(ids)s)"
                " AND applied_at IS NOT NULL",
                {"ids": list(ids.values())},
            )
            return bool(rows[0]["n"] == len(ids))

        await _within(5, all_applied)
    limit = await run_sql(
        services, "SELECT max_devices FROM user_limits WHERE user_id = %(u)s", {"u": user}
    )
    assert limit[0]["max_devices"] == 5
