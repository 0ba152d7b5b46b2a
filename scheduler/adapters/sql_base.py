"""Shared pieces of the SQL repositories: statement execution with error translation, and
keyset cursors."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from scheduler.adapters.db_errors import translate_db_errors
from scheduler.domain.errors import InvalidRequest


class SqlRepository:
    """A repository bound to the connection of one unit of work."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def _rows(
        self, statement: TextClause, params: Mapping[str, Any] | None = None
    ) -> Sequence[RowMapping]:
        with translate_db_errors():
            result = await self._connection.execute(statement, params or {})
            return result.mappings().all() if result.returns_rows else []

    async def _row(
        self, statement: TextClause, params: Mapping[str, Any] | None = None
    ) -> RowMapping | None:
        rows = await self._rows(statement, params)
        return rows[0] if rows else None


def sql(statement: str) -> TextClause:
    return text(statement)


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps([str(v) for v in values]).encode()).decode()


def decode_cursor(cursor: str, parts: int) -> list[str]:
    """Raises:
    InvalidRequest: the cursor was not one this service issued.
    """
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as exc:
        raise InvalidRequest("cursor is not valid") from exc
    if not isinstance(values, list) or len(values) != parts:
        raise InvalidRequest("cursor is not valid")
    return [str(v) for v in values]


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
