"""The Redis Stream that outbox events are relayed to."""

from __future__ import annotations

import json
from collections.abc import Sequence

from redis.asyncio import Redis

from scheduler.domain.events import EventRecord


class RedisEventStream:
    """Appends events to one stream; each entry carries the event's stable id, so consumers
    can drop the duplicates that at-least-once delivery may bring."""

    def __init__(self, redis: Redis, stream: str, maxlen: int) -> None:
        self._redis = redis
        self._stream = stream
        self._maxlen = maxlen

    async def publish(self, events: Sequence[tuple[int, EventRecord]]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for seq, event in events:
                pipe.xadd(
                    self._stream,
                    {
                        "event_id": str(event.id),
                        "seq": seq,
                        "type": event.type,
                        "aggregate_id": event.aggregate_id,
                        "occurred_at": event.occurred_at.isoformat(),
                        "payload": json.dumps(event.payload, sort_keys=True),
                    },
                    maxlen=self._maxlen,
                    approximate=True,
                )
            await pipe.execute()
