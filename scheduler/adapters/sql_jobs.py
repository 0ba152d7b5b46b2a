"""SQL repositories of the outbox, the periodic-job ledger and the scheduler settings."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from psycopg.types.json import Jsonb

from scheduler.adapters.sql_base import SqlRepository
from scheduler.domain.events import DomainEvent, EventRecord, record_of


class SqlOutboxRepository(SqlRepository):
    async def add(self, events: Sequence[DomainEvent]) -> None:
        for event in map(record_of, events):
            await self._send(
                "INSERT INTO outbox_events (event_id, type, aggregate_id, payload, occurred_at)"
                " VALUES (%(id)s, %(type)s, %(aggregate_id)s, %(payload)s, %(at)s)",
                {
                    "id": event.id,
                    "type": event.type,
                    "aggregate_id": event.aggregate_id,
                    "payload": Jsonb(event.payload),
                    "at": event.occurred_at,
                },
            )

    async def add_for_granted(
        self, lease_id: uuid.UUID, events_by_device: Mapping[uuid.UUID, Sequence[DomainEvent]]
    ) -> None:
        """Add the events listed under the device the lease ``lease_id`` got (a grant this
        transaction sent before); nothing if it got none."""
        rows = [(d, record_of(e)) for d, events in events_by_device.items() for e in events]
        await self._send(
            "INSERT INTO outbox_events (event_id, type, aggregate_id, payload, occurred_at)"
            " SELECT e.id, e.type, e.aggregate_id, e.payload, e.at FROM unnest(%(devices)s::uuid[],"
            " %(ids)s::uuid[], %(types)s::text[], %(aggregates)s::text[], %(payloads)s::jsonb[],"
            " %(ats)s::timestamptz[]) WITH ORDINALITY AS e(device_id, id, type, aggregate_id,"
            " payload, at, pos) JOIN allocations a ON a.device_id = e.device_id"
            " WHERE a.id = %(lease)s ORDER BY e.pos",
            {
                "lease": lease_id,
                "devices": [d for d, _ in rows],
                "ids": [r.id for _, r in rows],
                "types": [r.type for _, r in rows],
                "aggregates": [r.aggregate_id for _, r in rows],
                "payloads": [Jsonb(r.payload) for _, r in rows],
                "ats": [r.occurred_at for _, r in rows],
            },
        )

    async def claim_unrelayed(
        self, limit: int, now: datetime, takeover: timedelta
    ) -> list[tuple[int, EventRecord]]:
        """Claim the oldest unrelayed events nobody claimed (or whose claim is older than
        ``takeover``: its relay died), in order."""
        rows = await self._rows(
            "UPDATE outbox_events SET relay_claimed_at = %(now)s WHERE seq IN ("
            " SELECT seq FROM outbox_events WHERE relayed_at IS NULL"
            " AND (relay_claimed_at IS NULL OR relay_claimed_at < %(stale)s)"
            " ORDER BY seq LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
            " RETURNING seq, event_id, type, aggregate_id, payload, occurred_at",
            {"limit": limit, "now": now, "stale": now - takeover},
        )
        rows.sort(key=lambda r: r["seq"])
        return [
            (
                r["seq"],
                EventRecord(
                    r["type"], r["aggregate_id"], r["payload"], r["occurred_at"], r["event_id"]
                ),
            )
            for r in rows
        ]

    async def recent(self, limit: int) -> list[tuple[int, EventRecord]]:
        """The newest events, relayed or not, newest first."""
        rows = await self._rows(
            "SELECT seq, event_id, type, aggregate_id, payload, occurred_at FROM outbox_events"
            " ORDER BY seq DESC LIMIT %(limit)s",
            {"limit": limit},
        )
        return [
            (
                r["seq"],
                EventRecord(
                    r["type"], r["aggregate_id"], r["payload"], r["occurred_at"], r["event_id"]
                ),
            )
            for r in rows
        ]

    async def prune(self, relayed_before: datetime) -> int:
        """Forget events relayed before ``relayed_before`` (never an undelivered one)."""
        rows = await self._rows(
            "DELETE FROM outbox_events WHERE relayed_at IS NOT NULL"
            " AND relayed_at < %(before)s RETURNING seq",
            {"before": relayed_before},
        )
        return len(rows)

    async def mark_relayed(self, seqs: Sequence[int], now: datetime) -> None:
        await self._send(
            "UPDATE outbox_events SET relayed_at = %(now)s WHERE seq = ANY(%(seqs)s)",
            {"seqs": list(seqs), "now": now},
        )


class SqlJobLedger(SqlRepository):
    async def claim_tick(self, job: str, tick: int, owner: str, now: datetime) -> bool:
        row = await self._row(
            "INSERT INTO job_ticks (job, tick, owner, ran_at)"
            " VALUES (%(job)s, %(tick)s, %(owner)s, %(now)s)"
            " ON CONFLICT ON CONSTRAINT job_ticks_once_v1 DO NOTHING RETURNING tick",
            {"job": job, "tick": tick, "owner": owner, "now": now},
        )
        return row is not None

    async def prune(self, before: datetime) -> int:
        rows = await self._rows(
            "DELETE FROM job_ticks WHERE ran_at < %(before)s RETURNING tick", {"before": before}
        )
        return len(rows)


class SqlSchedulerConfig(SqlRepository):
    async def strategy(self) -> str:
        row = await self._row("SELECT strategy FROM scheduler_config")
        return str(row["strategy"]) if row else "binpack"

    async def strategy_weights(self) -> tuple[int, int, int] | None:
        """The active strategy's (fit, balance, node) points (``None``: its type's)."""
        row = await self._row("SELECT strategy_weights FROM scheduler_config")
        weights = row["strategy_weights"] if row else None
        return (weights[0], weights[1], weights[2]) if weights else None
