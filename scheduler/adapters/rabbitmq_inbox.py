"""The platform's messages from RabbitMQ: one durable queue (``phonefleet.inbox``) bound to
the platform's exchange for every key the inbox reads, its dead letters to the platform's
dead-letter exchange (``cloudphone.dlx``), where the durable ``phonefleet.inbox.dead`` keeps
them.

A delivery is acknowledged only after the inbox committed it (or found it applied before): a
consumer killed mid-message leaves it unacknowledged and the broker delivers it again. A
message to retry goes back to the queue after a pause; a dead one is published to the
dead-letter exchange under its own key with the reason (``x-phonefleet-reason``) and its
attempts, then acknowledged.
"""

from __future__ import annotations

import asyncio
import logging

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from scheduler.domain.inbox import ROUTING_KEYS, message_id_of
from scheduler.services.inbox import Receive, Verdict

logger = logging.getLogger(__name__)

QUEUE = "phonefleet.inbox"


class RabbitInbox:
    def __init__(
        self,
        url: str,
        receive: Receive,
        *,
        exchange: str = "cloudphone.events",
        dead_letter_exchange: str = "cloudphone.dlx",
        queue: str = QUEUE,
        retry_pause_seconds: float = 0.5,
    ) -> None:
        self._url = url
        self._receive = receive
        self._exchange = exchange
        self._dlx_name = dead_letter_exchange
        self._queue = queue
        self._pause = retry_pause_seconds
        self.handled = 0
        #: Set once the queues are declared and bound (messages published from then on are
        #: kept for it).
        self.ready = asyncio.Event()

    async def run(self) -> None:
        """Consume until cancelled, connecting again after any loss."""
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("the RabbitMQ inbox lost its connection; reconnecting")
                await asyncio.sleep(1.0)

    async def _consume(self) -> None:
        connection = await aio_pika.connect_robust(self._url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=16)
            exchange = await channel.declare_exchange(
                self._exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            dlx = await channel.declare_exchange(
                self._dlx_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
            queue = await channel.declare_queue(
                self._queue, durable=True, arguments={"x-dead-letter-exchange": self._dlx_name}
            )
            dead = await channel.declare_queue(f"{self._queue}.dead", durable=True)
            for key in ROUTING_KEYS:
                await queue.bind(exchange, routing_key=key)
                await dead.bind(dlx, routing_key=key)
            self.ready.set()
            async with queue.iterator() as messages:
                async for message in messages:
                    await self._handle(message, dlx)

    async def _handle(self, message: AbstractIncomingMessage, dlx: AbstractExchange) -> None:
        key = message.routing_key or ""
        message_id = message_id_of(message.message_id, key, message.body)
        received = await self._receive(message_id, "rabbitmq", key, message.body)
        if received.verdict is Verdict.RETRY:
            await asyncio.sleep(self._pause * min(received.attempts, 10))
            await message.nack(requeue=True)
            return
        if received.verdict is Verdict.DEAD:
            logger.warning("inbox message %s dead-lettered: %s", message_id, received.detail)
            await dlx.publish(
                aio_pika.Message(
                    message.body,
                    content_type=message.content_type or "application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message_id,
                    headers={
                        **(message.headers or {}),
                        "x-phonefleet-reason": received.detail[:1000],
                        "x-phonefleet-attempts": received.attempts,
                        "x-phonefleet-queue": self._queue,
                    },
                ),
                routing_key=key,
            )
        await message.ack()
        self.handled += 1
