"""Relayed events reach the platform's RabbitMQ exchange (issue 12 §4), on the machine's
broker: the original's routing keys and fields, persistent, ``message_id`` the event's id."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import httpx
import pytest

from scheduler.bootstrap import Services, build_services
from scheduler.config import Settings
from scheduler.services.housekeeping import relay_outbox
from serve.app import create_app
from tests.builders import auth, in_pool, new_pool, new_tenant, new_token, run_sql

pytestmark = pytest.mark.integration

#: CI names the broker (and the test fails without it); elsewhere the local one is tried, and
#: the test is skipped when there is none.
CONFIGURED = os.environ.get("PHONEFLEET_TEST_RABBITMQ_URL")
RABBITMQ_URL = CONFIGURED or "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
async def exchange_and_queue() -> AsyncIterator[tuple[str, aio_pika.abc.AbstractQueue]]:
    """An exchange of this test's own, and a queue bound to every key on it."""
    name = f"cloudphone.events.test-{uuid.uuid4().hex[:8]}"
    try:
        connection = await aio_pika.connect_robust(RABBITMQ_URL, timeout=5)
    except (OSError, aio_pika.exceptions.AMQPError):
        if CONFIGURED:
            raise
        pytest.skip("no RabbitMQ at 127.0.0.1:5672 (set PHONEFLEET_TEST_RABBITMQ_URL)")
    channel = await connection.channel()
    exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key="#")
    try:
        yield name, queue
    finally:
        await exchange.delete()
        await connection.close()


@pytest.fixture
async def with_rabbit(
    settings: Settings, exchange_and_queue: tuple[str, Any]
) -> AsyncIterator[Services]:
    services = build_services(
        settings.model_copy(
            update={"rabbitmq_url": RABBITMQ_URL, "rabbitmq_exchange": exchange_and_queue[0]}
        )
    )
    yield services
    await services.close()


async def _received(queue: aio_pika.abc.AbstractQueue, allocation_id: str) -> list[Any]:
    """The messages about ``allocation_id`` that arrived within 5 s (the relay carries every
    test's events; only this lease's are looked at)."""
    mine: list[Any] = []
    deadline = asyncio.get_running_loop().time() + 5
    while asyncio.get_running_loop().time() < deadline and len(mine) < 3:
        message = await queue.get(fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        await message.ack()
        if json.loads(message.body).get("allocationId") == allocation_id:
            mine.append(message)
    return mine


async def test_a_lease_reaches_the_platform_exchange_with_the_originals_keys(
    with_rabbit: Services,
    client: httpx.AsyncClient,
    admin_token: str,
    exchange_and_queue: tuple[str, aio_pika.abc.AbstractQueue],
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "platform-user")
    transport = httpx.ASGITransport(app=create_app(with_rabbit))
    async with httpx.AsyncClient(transport=transport, base_url="http://pf") as app:
        lease = (
            await app.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
        ).json()
        await app.post(
            "/scheduler/devices/release",
            headers=auth(token),
            json={"allocationId": lease["allocationId"]},
        )

    await relay_outbox(
        with_rabbit.uow,
        with_rabbit.events,
        now=with_rabbit.clock(),
        owner=f"rabbit-{uuid.uuid4().hex[:6]}",
        interval_seconds=0.001,
        limit=100_000,
    )
    messages = await _received(exchange_and_queue[1], lease["allocationId"])

    keys = [m.routing_key for m in messages]
    assert keys == ["device.allocated", "device.released", "scheduler.allocation.released"]
    outbox = await run_sql(
        with_rabbit,
        "SELECT event_id, type FROM outbox_events WHERE aggregate_id = %(id)s",
        {"id": lease["allocationId"]},
    )
    ids = {row["type"]: str(row["event_id"]) for row in outbox}
    assert [m.message_id for m in messages] == [
        ids["allocation.granted"],
        ids["allocation.released"],
        ids["allocation.released"],
    ]
    assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in messages)
    allocated, released, scheduler_released = (json.loads(m.body) for m in messages)
    assert allocated["deviceId"] == lease["deviceId"] and allocated["userId"] == "platform-user"
    assert allocated["tenantId"] == tenant["id"]
    assert released["releasedAt"] and isinstance(released["durationSeconds"], int)
    assert scheduler_released["automatic"] is False
    (relayed,) = await run_sql(
        with_rabbit,
        "SELECT bool_and(relayed_at IS NOT NULL) AS all_relayed FROM outbox_events"
        " WHERE aggregate_id = %(id)s",
        {"id": lease["allocationId"]},
    )
    assert relayed["all_relayed"]
