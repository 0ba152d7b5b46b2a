"""SQL repositories of the outbox and the periodic-job ledger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from scheduler.adapters.sql_base import SqlRepository, as_json, sql
from scheduler.domain.events import Event


class SqlOutboxRepository(SqlRepository):
    async def add(self, events: Sequence[Event]) -> None:
        if not events:
            return
        await self._rows(
            sql(
                "INSERT INTO outbox_events (event_id, type, aggregate_id, payload, occurred_at)"
                " VALUES (:id, :type, :aggregate_id, CAST(:payload AS jsonb), :occurred_at)"
            ),
            [
                {  # type: ignore[arg-type]
                    "id": e.id,
                    "type": e.type,
                    "aggregate_id": e.aggregate_id,
                    "payload": as_json(e.payload),
                    "occurred_at": e.occurred_at,
                }
                for e in events
            ],
        )

    async def claim_unrelayed(self, limit: int) -> list[tuple[int, Event]]:
        rows = await self._rows(
            sql(
                "SELECT seq, event_id, type, aggregate_id, payload, occurred_at FROM outbox_events"
                " WHERE relayed_at IS NULL ORDER BY seq LIMIT :limit FOR UPDATE SKIP LOCKED"
            ),
            {"limit": limit},
        )
        return [
            (
                r["seq"],
                Event(r["type"], r["aggregate_id"], r["payload"], r["occurred_at"], r["event_id"]),
            )
            for r in rows
        ]

    async def mark_relayed(self, seqs: Sequence[int], now: datetime) -> None:
        await self._rows(
            sql(
                "UPDATE outbox_events SET relayed_at = :now WHERE seq = ANY(CAST(:seqs AS bigint[]))"
            ),
            {"seqs": list(seqs), "now": now},
        )


class SqlJobLedger(SqlRepository):
    async def claim_tick(self, job: str, tick: int, owner: str, now: datetime) -> bool:
        row = await self._row(
            sql(
                "INSERT INTO job_ticks (job, tick, owner, ran_at) VALUES (:job, :tick, :owner, :now)"
                " ON CONFLICT ON CONSTRAINT job_ticks_once_v1 DO NOTHING RETURNING tick"
            ),
            {"job": job, "tick": tick, "owner": owner, "now": now},
        )
        return row is not None

    async def prune(self, before: datetime) -> int:
        rows = await self._rows(
            sql("DELETE FROM job_ticks WHERE ran_at < :before RETURNING tick"), {"before": before}
        )
        return len(rows)
