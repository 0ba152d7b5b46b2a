"""SQL repositories of the inbox (each platform message once) and of the users the platform
suspended."""

from __future__ import annotations

from datetime import datetime

from scheduler.adapters.sql_base import SqlRepository


class SqlInboxRepository(SqlRepository):
    async def claim(
        self, message_id: str, source: str, routing_key: str, now: datetime
    ) -> str | None:
        """Claim the message for this transaction: ``None`` when it is to be applied now, else
        how it ended before (``applied`` or ``dead``). A transaction applying the same
        message is waited for."""
        row = await self._row(
            "INSERT INTO inbox_messages (message_id, source, routing_key, received_at, attempts)"
            " VALUES (%(id)s, %(source)s, %(key)s, %(now)s, 1)"
            " ON CONFLICT (message_id) DO UPDATE SET attempts = inbox_messages.attempts + 1"
            " WHERE inbox_messages.applied_at IS NULL AND inbox_messages.dead_at IS NULL"
            " RETURNING message_id",
            {"id": message_id, "source": source, "key": routing_key, "now": now},
        )
        if row is not None:
            return None
        ended = await self._row(
            "SELECT CASE WHEN applied_at IS NOT NULL THEN 'applied' ELSE 'dead' END AS how"
            " FROM inbox_messages WHERE message_id = %(id)s",
            {"id": message_id},
        )
        return str(ended["how"]) if ended else "applied"

    async def applied(self, message_id: str, outcome: str, now: datetime) -> None:
        await self._send(
            "UPDATE inbox_messages SET applied_at = %(now)s, outcome = %(outcome)s,"
            " last_error = NULL WHERE message_id = %(id)s",
            {"id": message_id, "outcome": outcome[:1000], "now": now},
        )

    async def failed(
        self,
        message_id: str,
        source: str,
        routing_key: str,
        error: str,
        now: datetime,
        *,
        dead_after: int,
    ) -> tuple[int, bool]:
        """Count a failed attempt (its work rolled back): the attempts so far, and whether the
        message is now dead (after ``dead_after`` attempts). A message applied meanwhile
        stays applied: ``(0, False)``."""
        row = await self._row(
            "INSERT INTO inbox_messages AS m (message_id, source, routing_key, received_at,"
            " attempts, last_error) VALUES (%(id)s, %(source)s, %(key)s, %(now)s, 1, %(error)s)"
            " ON CONFLICT (message_id) DO UPDATE SET attempts = m.attempts + 1,"
            " last_error = %(error)s WHERE m.applied_at IS NULL RETURNING attempts",
            {
                "id": message_id,
                "source": source,
                "key": routing_key,
                "now": now,
                "error": error[:1000],
            },
        )
        if row is None:
            return 0, False
        attempts = int(row["attempts"])
        dead = attempts >= dead_after
        if dead:
            await self._send(
                "UPDATE inbox_messages SET dead_at = %(now)s WHERE message_id = %(id)s",
                {"id": message_id, "now": now},
            )
        return attempts, dead


class SqlStandingRepository(SqlRepository):
    async def suspend(self, user_id: str, cause: str, reason: str, now: datetime) -> None:
        await self._send(
            "INSERT INTO user_suspensions (user_id, cause, reason, since)"
            " VALUES (%(user)s, %(cause)s, %(reason)s, %(now)s) ON CONFLICT (user_id)"
            " DO UPDATE SET cause = EXCLUDED.cause, reason = EXCLUDED.reason",
            {"user": user_id, "cause": cause, "reason": reason[:500], "now": now},
        )

    async def reinstate(self, user_id: str) -> bool:
        rows = await self._rows(
            "DELETE FROM user_suspensions WHERE user_id = %(user)s RETURNING user_id",
            {"user": user_id},
        )
        return bool(rows)

    async def suspended_users(self) -> frozenset[str]:
        rows = await self._rows("SELECT user_id FROM user_suspensions")
        return frozenset(r["user_id"] for r in rows)
