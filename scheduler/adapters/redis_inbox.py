"""The platform's messages from a Redis stream (``phonefleet:inbox``), for platforms without
RabbitMQ: entries ``{type: <routing key>, data: <JSON body>, id?: <message id>}`` read by a
consumer group (``phonefleet-inbox``).

An entry is acknowledged (``XACK``) only after the inbox committed it; one left pending (its
consumer died, or it is to be retried) is claimed again once idle for
``retry_idle_seconds``. A dead one is copied with its reason to ``<stream>:dead``, then
acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from scheduler.domain.inbox import message_id_of
from scheduler.services.inbox import Receive, Verdict

logger = logging.getLogger(__name__)

GROUP = "phonefleet-inbox"


class RedisInbox:
    def __init__(
        self,
        redis: Redis,
        stream: str,
        receive: Receive,
        consumer: str,
        *,
        retry_idle_seconds: float = 5.0,
        block_seconds: float = 1.0,
    ) -> None:
        self._redis = redis
        self._stream = stream
        self._receive = receive
        self._consumer = consumer
        self._idle_ms = int(retry_idle_seconds * 1000)
        self._block_ms = int(block_seconds * 1000)
        self.handled = 0

    async def run(self) -> None:
        """Consume until cancelled; Redis outages are waited out."""
        while True:
            try:
                await self._ensure_group()
                await self.read_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("the Redis inbox failed; trying again")
                await asyncio.sleep(1.0)

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def read_once(self) -> None:
        """Handle the entries left pending long enough, then wait for new ones."""
        _, stale, *_ = await self._redis.xautoclaim(
            self._stream, GROUP, self._consumer, self._idle_ms, "0-0", count=32
        )
        for entry_id, fields in stale:
            await self._handle(entry_id, fields)
        fresh = await self._redis.xreadgroup(
            GROUP, self._consumer, {self._stream: ">"}, count=32, block=self._block_ms
        )
        for _, entries in fresh or []:
            for entry_id, fields in entries:
                await self._handle(entry_id, fields)

    async def _handle(self, entry_id: str, fields: dict[str, Any]) -> None:
        key = str(fields.get("type", ""))
        body = str(fields.get("data", "")).encode()
        message_id = message_id_of(fields.get("id"), key, body)
        received = await self._receive(message_id, "redis", key, body)
        if received.verdict is Verdict.RETRY:
            return  # pending: claimed again once idle
        if received.verdict is Verdict.DEAD:
            logger.warning("inbox entry %s dead-lettered: %s", entry_id, received.detail)
            await self._redis.xadd(
                f"{self._stream}:dead",
                {**fields, "entry": entry_id, "reason": received.detail[:1000]},
                maxlen=100_000,
            )
        await self._redis.xack(self._stream, GROUP, entry_id)
        self.handled += 1
