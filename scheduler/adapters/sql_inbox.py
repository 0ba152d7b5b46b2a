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
            " attempts, last_error, dead_at) VALUES (%(id)s, %(source)s, %(key)s, %(now)s, 1,"
            " %(error)s, CASE WHEN %(dead_after)s <= 1 THEN %(now)s::timestamptz END)"
            " ON CONFLICT (message_id) DO UPDATE SET attempts = m.attempts + 1,"
            " last_error = %(error)s, dead_at = CASE WHEN m.attempts + 1 >= %(dead_after)s"
            " THEN %(now)s::timestamptz ELSE m.dead_at END"
            " WHERE m.applied_at IS NULL RETURNING attempts",
            {
                "id": message_id,
                "source": source,
                "key": routing_key,
                "now": now,
                "error": error[:1000],
                "dead_after": dead_after,
            },
        )
        if row is None:
            return 0, False
        attempts = int(row["attempts"])
        return attempts, attempts >= dead_after


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

    async def active_leases(self, user_id: str) -> int:
        row = await self._row(
            "SELECT count(*) AS n FROM allocations WHERE user_id = %(user)s AND status = 'active'",
            {"user": user_id},
        )
        return int(row["n"]) if row else 0

    async def set_limit(
        self, user_id: str, max_devices: int, now: datetime, enforce_at: datetime | None
    ) -> None:
        await self._send(
            "INSERT INTO user_limits (user_id, max_devices, set_at, enforce_at)"
            " VALUES (%(user)s, %(max)s, %(now)s, %(at)s) ON CONFLICT (user_id) DO UPDATE SET"
            " max_devices = EXCLUDED.max_devices, set_at = EXCLUDED.set_at,"
            " enforce_at = EXCLUDED.enforce_at",
            {"user": user_id, "max": max_devices, "now": now, "at": enforce_at},
        )

    async def lock_due_limits(self, now: datetime, limit: int) -> list[tuple[str, int]]:
        rows = await self._rows(
            "SELECT user_id, max_devices FROM user_limits WHERE enforce_at <= %(now)s"
            " ORDER BY enforce_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
            {"now": now, "limit": limit},
        )
        return [(r["user_id"], int(r["max_devices"])) for r in rows]

    async def limit_enforced(self, user_id: str) -> None:
        await self._send(
            "UPDATE user_limits SET enforce_at = NULL WHERE user_id = %(user)s", {"user": user_id}
        )

    async def payment_failed(self, user_id: str, now: datetime) -> int:
        """Count one more failed payment; how many since the last one that went through."""
        row = await self._row(
            "INSERT INTO billing_standing AS b (user_id, payment_failures, changed_at)"
            " VALUES (%(user)s, 1, %(now)s) ON CONFLICT (user_id) DO UPDATE SET"
            " payment_failures = b.payment_failures + 1, changed_at = %(now)s"
            " RETURNING payment_failures",
            {"user": user_id, "now": now},
        )
        return int(row["payment_failures"]) if row else 1

    async def suspension_due(
        self, user_id: str, reason: str, due_at: datetime, now: datetime
    ) -> datetime:
        """Make a suspension due at ``due_at`` unless one is due earlier; when it is."""
        row = await self._row(
            "INSERT INTO billing_standing AS b (user_id, suspend_at, reason, changed_at)"
            " VALUES (%(user)s, %(due)s, %(reason)s, %(now)s) ON CONFLICT (user_id) DO UPDATE SET"
            " suspend_at = least(coalesce(b.suspend_at, EXCLUDED.suspend_at),"
            " EXCLUDED.suspend_at), reason = coalesce(b.reason, EXCLUDED.reason),"
            " changed_at = %(now)s RETURNING suspend_at",
            {"user": user_id, "due": due_at, "reason": reason[:500], "now": now},
        )
        return row["suspend_at"] if row else due_at

    async def settle(self, user_id: str, now: datetime) -> bool:
        """Forget failed payments and any suspension due; whether there was any."""
        rows = await self._rows(
            "UPDATE billing_standing SET payment_failures = 0, suspend_at = NULL, reason = NULL,"
            " changed_at = %(now)s WHERE user_id = %(user)s"
            " AND (payment_failures > 0 OR suspend_at IS NOT NULL) RETURNING user_id",
            {"user": user_id, "now": now},
        )
        return bool(rows)

    async def lock_due_suspensions(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        rows = await self._rows(
            "SELECT user_id, reason FROM billing_standing WHERE suspend_at <= %(now)s"
            " ORDER BY suspend_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
            {"now": now, "limit": limit},
        )
        return [(r["user_id"], r["reason"] or "billing overdue") for r in rows]

    async def suspension_applied(self, user_id: str) -> None:
        await self._send(
            "UPDATE billing_standing SET suspend_at = NULL WHERE user_id = %(user)s",
            {"user": user_id},
        )

    async def suspension_cause(self, user_id: str) -> str | None:
        row = await self._row(
            "SELECT cause FROM user_suspensions WHERE user_id = %(user)s", {"user": user_id}
        )
        return str(row["cause"]) if row else None
