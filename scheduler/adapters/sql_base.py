"""Shared pieces of the SQL repositories: statements with error translation, and cursors.

Repositories run psycopg 3 statements on the connection of their unit of work, which is in
pipeline mode: a statement whose result is not read is only queued, and goes to the server
with the next one that is read (or with the commit), so a transaction costs a round trip per
*read*, not per statement.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from scheduler.adapters.db_errors import translate_db_errors
from scheduler.domain.errors import InvalidCursor

Row = dict[str, Any]
Params = Mapping[str, Any]


class SqlRepository:
    """A repository bound to the connection of one unit of work."""

    def __init__(self, connection: AsyncConnection[Row]) -> None:
        self._connection = connection

    async def _rows(self, query: str, params: Params | None = None) -> list[Row]:
        with translate_db_errors():
            cursor = await self._connection.execute(query, params)
            return await cursor.fetchall()

    async def _row(self, query: str, params: Params | None = None) -> Row | None:
        rows = await self._rows(query, params)
        return rows[0] if rows else None

    async def _send(self, query: str, params: Params | None = None) -> None:
        """Queue a statement whose result nobody reads (errors surface at the commit)."""
        with translate_db_errors():
            await self._connection.execute(query, params)

    async def _send_many(self, query: str, params: Iterable[Params]) -> None:
        with translate_db_errors():
            async with self._connection.cursor() as cursor:
                await cursor.executemany(query, params)


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps([str(v) for v in values]).encode()).decode()


def timestamp(value: str) -> datetime:
    """A cursor part that is a timezone-aware instant."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("a cursor timestamp carries its timezone")
    return parsed


def text(value: str) -> str:
    """A cursor part that is a name (bounded, storable)."""
    if len(value) > 512 or "\x00" in value:
        raise ValueError("not a name")
    return value


def decode_cursor(cursor: str, *parts: Callable[[str], Any]) -> list[Any]:
    """The values a cursor of ``encode_cursor`` holds, each parsed by its part's parser
    (``timestamp``, ``text``, ``uuid.UUID``), so a crafted cursor never reaches SQL.

    Raises:
        InvalidCursor: the cursor was not one this service issued.
    """
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(values, list) or len(values) != len(parts):
            raise ValueError("wrong number of parts")
        return [parse(str(value)) for parse, value in zip(parts, values, strict=True)]
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidCursor() from exc
