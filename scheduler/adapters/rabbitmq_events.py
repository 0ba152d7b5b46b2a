"""Relayed events published to the platform's RabbitMQ exchange (``cloudphone.events``,
topic, durable) under the original scheduler's routing keys, as persistent messages whose
``message_id`` is the event's id; the broker confirms each before the batch counts as sent."""

from __future__ import annotations

import json
from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustConnection

from scheduler.domain.events import EventRecord
from scheduler.domain.platform_events import platform_messages
from scheduler.services.ports import EventStream

DEFAULT_EXCHANGE = "cloudphone.events"


class RabbitEventPublisher:
    def __init__(self, url: str, exchange: str = DEFAULT_EXCHANGE) -> None:
        self._url = url
        self._exchange_name = exchange
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None

    async def _exchange_ready(self) -> AbstractExchange:
        if self._exchange is None:
            self._connection = await aio_pika.connect_robust(self._url)
            channel = await self._connection.channel(publisher_confirms=True)
            self._exchange = await channel.declare_exchange(
                self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        return self._exchange

    async def publish(self, events: Sequence[tuple[int, EventRecord]]) -> None:
        messages = [m for _, record in events for m in platform_messages(record)]
        if not messages:
            return
        exchange = await self._exchange_ready()
        for message in messages:
            await exchange.publish(
                aio_pika.Message(
                    json.dumps(message.body, sort_keys=True).encode(),
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message.message_id,
                    type=message.routing_key,
                    app_id="phonefleet",
                ),
                routing_key=message.routing_key,
            )

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._exchange = None


class FanOutEventStream:
    """Relays each batch to every stream in turn; a batch one of them did not take is not
    relayed and comes again (the others see it twice: consumers drop duplicates by id)."""

    def __init__(self, *streams: EventStream) -> None:
        self._streams = streams

    async def publish(self, events: Sequence[tuple[int, EventRecord]]) -> None:
        for stream in self._streams:
            await stream.publish(events)
