"""Committed changes as PostgreSQL announces them (``LISTEN phonefleet_changes``), so that a
client can wait for one without polling and without holding a database connection.

One listening connection per process serves every waiter: ``watch(key)`` hands out an event
set when a notification with that payload arrives (``queue:<id>`` when an entry's status
changes, ``allocation:<id>`` when a lease's does, ``queue:viewed`` after a drain stored new
views). A waiter subscribes before it reads, so a change between its read and its wait is
never missed. When the connection drops, every waiter is woken (it reads again) and the
listener reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import psycopg

from scheduler.adapters.sql_queue import CHANGES_CHANNEL
from scheduler.adapters.sql_unit_of_work import plain_postgres_url
from scheduler.services.ports import QUEUE_EMPTY, VIEWS_UPDATED

logger = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0


class PgChangeFeed:
    def __init__(self, url: str) -> None:
        self._url = plain_postgres_url(url)
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._queue_empty = False
        self._callbacks: dict[str, list[Callable[[], None]]] = {}

    @contextlib.asynccontextmanager
    async def watch(self, *keys: str) -> AsyncIterator[asyncio.Event]:
        """An event set when any of ``keys`` is announced (or the feed was interrupted)."""
        self._start()
        event = asyncio.Event()
        for key in keys:
            self._waiters.setdefault(key, set()).add(event)
        try:
            # Subscribed first, then listening: a change committed after this returns is seen.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._listening.wait(), timeout=5)
            yield event
        finally:
            for key in keys:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del self._waiters[key]

    @property
    def listening(self) -> bool:
        self._start()
        return self._listening.is_set()

    def on(self, key: str, callback: Callable[[], None]) -> None:
        self._callbacks.setdefault(key, []).append(callback)

    @property
    def queue_empty(self) -> bool:
        """Whether the last drain announced left nobody waiting (``False`` while unknown:
        before the first announcement, after a reconnect). Starts listening."""
        self._start()
        return self._queue_empty

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._listen_forever())

    async def _listen_forever(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {CHANGES_CHANNEL}")
                    self._listening.set()
                    async for notification in connection.notifies():
                        if notification.payload == QUEUE_EMPTY:
                            self._queue_empty = True
                        elif notification.payload == VIEWS_UPDATED:
                            self._queue_empty = False
                        for event in self._waiters.get(notification.payload, ()):
                            event.set()
                        for callback in self._callbacks.get(notification.payload, ()):
                            callback()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("the change feed lost its connection; reconnecting", exc_info=True)
            self._listening.clear()
            self._queue_empty = False
            for waiters in list(self._waiters.values()):
                for event in waiters:
                    event.set()  # they read again rather than wait for a lost notification
            for callbacks in list(self._callbacks.values()):
                for callback in callbacks:
                    callback()  # whatever they cached may have changed unheard
            await asyncio.sleep(RECONNECT_SECONDS)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
