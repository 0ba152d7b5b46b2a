"""Waiting for a change without polling: read, and while the answer is not settled, wait for
the change feed to announce a change of it (or for the time to run out), then read again.
The caller holds no database connection while it waits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from scheduler.services.ports import ChangeFeed

T = TypeVar("T")

#: The longest a client may ask to wait.
MAX_WAIT_SECONDS = 30


async def read_until(
    feed: ChangeFeed,
    keys: tuple[str, ...],
    read: Callable[[], Awaitable[T]],
    settled: Callable[[T], bool],
    *,
    seconds: float,
) -> T:
    """``read()``'s answer as soon as it is ``settled``, or the latest one once ``seconds``
    have passed; it reads again only when one of ``keys`` is announced."""
    value = await read()
    if seconds <= 0 or settled(value):
        return value
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    async with feed.watch(*keys) as changed:
        value = await read()  # subscribed first: nothing committed after this read is missed
        while not settled(value):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                break
            changed.clear()
            value = await read()
    return value
