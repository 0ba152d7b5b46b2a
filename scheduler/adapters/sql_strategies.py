"""SQL repository of the strategy catalogue and its activation history."""

from __future__ import annotations

import uuid
from datetime import datetime

from placement.problem import Strategy
from scheduler.adapters.sql_base import Row, SqlRepository
from scheduler.domain.strategies import Activation, StrategyDefinition

#: Make strategy ``%(id)s``'s type and weights the placement settings.
TO_SETTINGS = (
    "UPDATE scheduler_config SET strategy = s.type, strategy_weights = s.weights,"
    " updated_at = %(now)s FROM strategies s WHERE s.id = %(id)s"
)


def strategy_from_row(row: Row) -> StrategyDefinition:
    fit, balance, node = row["weights"]
    return StrategyDefinition(
        id=row["id"],
        name=row["name"],
        type=Strategy(row["type"]),
        description=row["description"],
        weights=(fit, balance, node),
        is_active=row["is_active"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class SqlStrategyRepository(SqlRepository):
    async def list(self) -> list[StrategyDefinition]:
        rows = await self._rows("SELECT * FROM strategies ORDER BY name")
        return [strategy_from_row(r) for r in rows]

    async def get(self, strategy_id: uuid.UUID, *, lock: bool = False) -> StrategyDefinition | None:
        row = await self._row(
            "SELECT * FROM strategies WHERE id = %(id)s" + (" FOR UPDATE" if lock else ""),
            {"id": strategy_id},
        )
        return strategy_from_row(row) if row else None

    async def named(self, name: str) -> StrategyDefinition | None:
        row = await self._row("SELECT * FROM strategies WHERE name = %(name)s", {"name": name})
        return strategy_from_row(row) if row else None

    async def active(self) -> StrategyDefinition | None:
        row = await self._row("SELECT * FROM strategies WHERE is_active")
        return strategy_from_row(row) if row else None

    async def add(self, strategy: StrategyDefinition) -> None:
        await self._send(
            "INSERT INTO strategies (id, name, type, description, weights, is_active,"
            " created_at, updated_at) VALUES (%(id)s, %(name)s, %(type)s, %(description)s,"
            " %(weights)s, false, %(at)s, %(at)s)",
            {
                "id": strategy.id,
                "name": strategy.name,
                "type": strategy.type.value,
                "description": strategy.description,
                "weights": list(strategy.weights),
                "at": strategy.created_at,
            },
        )

    async def update(self, strategy: StrategyDefinition) -> None:
        """Store its name, type, description and weights; an active strategy's type and
        weights go to the scheduler's settings too."""
        await self._send(
            "UPDATE strategies SET name = %(name)s, type = %(type)s, description ="
            " %(description)s, weights = %(weights)s, updated_at = %(at)s WHERE id = %(id)s",
            {
                "id": strategy.id,
                "name": strategy.name,
                "type": strategy.type.value,
                "description": strategy.description,
                "weights": list(strategy.weights),
                "at": strategy.updated_at,
            },
        )
        await self._send(
            TO_SETTINGS + " AND s.is_active", {"id": strategy.id, "now": strategy.updated_at}
        )

    async def delete(self, strategy_id: uuid.UUID) -> None:
        await self._send("DELETE FROM strategies WHERE id = %(id)s", {"id": strategy_id})

    async def hold_settings(self) -> None:
        """Lock the scheduler's settings row: every change of the catalogue takes it first,
        so changes serialize there (two activations at once end with exactly one active, the
        later one) and never deadlock on the strategies' rows."""
        await self._send("SELECT 1 FROM scheduler_config FOR NO KEY UPDATE")

    async def activate(self, strategy_id: uuid.UUID, now: datetime, by: str) -> None:
        """Make it the one active strategy and the scheduler's placement settings, and
        record the activation (the settings row held: ``hold_settings``)."""
        params = {"id": strategy_id, "now": now, "by": by}
        # Two statements: the one-active index is checked row by row, not at the end of one.
        await self._send(
            "UPDATE strategies SET is_active = false, updated_at = %(now)s"
            " WHERE is_active AND id <> %(id)s",
            params,
        )
        await self._send(
            "UPDATE strategies SET is_active = true, updated_at = %(now)s"
            " WHERE id = %(id)s AND NOT is_active",
            params,
        )
        await self._send(TO_SETTINGS, params)
        await self._send(
            "INSERT INTO strategy_activations (strategy_id, name, type, activated_at,"
            " activated_by) SELECT id, name, type, %(now)s, %(by)s FROM strategies"
            " WHERE id = %(id)s",
            params,
        )

    async def activations(self, limit: int) -> list[Activation]:
        rows = await self._rows(
            "SELECT * FROM strategy_activations ORDER BY seq DESC LIMIT %(limit)s",
            {"limit": limit},
        )
        return [
            Activation(
                r["strategy_id"],
                r["name"],
                Strategy(r["type"]),
                r["activated_at"],
                r["activated_by"],
            )
            for r in rows
        ]
