"""``phonefleet-inbox``: the named, detached actor that applies the platform's messages
(issue 12 §3), from RabbitMQ when ``PHONEFLEET_RABBITMQ_URL`` is set and from the Redis stream
``PHONEFLEET_INBOX_STREAM`` always. Ray restarts it when it dies; what it was applying is
delivered again and applied once (``scheduler.services.inbox``)."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import ray

from actors.names import INBOX, NAMESPACE
from actors.node_actor import RayDeviceLifecycle
from actors.queue_actor import RayQueueDispatcher
from scheduler.adapters.rabbitmq_inbox import RabbitInbox
from scheduler.adapters.redis_inbox import RedisInbox
from scheduler.bootstrap import build_services
from scheduler.config import Settings
from scheduler.services.inbox import Inbox


class InboxActor:
    def __init__(self, settings: dict[str, Any]) -> None:
        self._settings = Settings(**settings)
        services = build_services(
            self._settings,
            RayDeviceLifecycle(self._settings),
            lambda changes: RayQueueDispatcher(self._settings, changes),
        )
        inbox = Inbox(
            services.commands,
            services.uow,
            services.clock,
            max_attempts=self._settings.inbox_max_attempts,
        )
        consumer = f"{socket.gethostname()}:{os.getpid()}"
        self._readers: list[RabbitInbox | RedisInbox] = [
            RedisInbox(services.redis, self._settings.inbox_stream, inbox.receive, consumer)
        ]
        if self._settings.rabbitmq_url:
            self._readers.append(
                RabbitInbox(
                    self._settings.rabbitmq_url,
                    inbox.receive,
                    exchange=self._settings.rabbitmq_exchange,
                    dead_letter_exchange=self._settings.rabbitmq_dead_letter_exchange,
                )
            )
        loop = asyncio.get_event_loop()
        self._tasks = [loop.create_task(reader.run()) for reader in self._readers]

    async def status(self) -> dict[str, Any]:
        return {
            type(reader).__name__: {"handled": reader.handled, "running": not task.done()}
            for reader, task in zip(self._readers, self._tasks, strict=True)
        }


RemoteInbox = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(InboxActor)


def ensure_inbox(settings: Settings) -> Any:
    """The inbox of this cluster, created if it does not exist yet."""
    return RemoteInbox.options(  # type: ignore[attr-defined]
        name=INBOX, namespace=NAMESPACE, get_if_exists=True, lifetime="detached"
    ).remote(settings.for_workers())
