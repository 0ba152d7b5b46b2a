"""SQL repository of reservations: windows per device, checked under the device's row lock."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from placement.model import CandidateDevices
from scheduler.adapters.sql_base import (
    Row,
    SqlRepository,
    decode_cursor,
    encode_cursor,
    timestamp,
)
from scheduler.adapters.sql_candidates import class_candidates, matching_clauses, tolerated
from scheduler.adapters.sql_leases import scope_sql
from scheduler.adapters.sql_queue import requirements_from_json, requirements_to_json
from scheduler.domain.fleet import DeviceStatus, NodeStatus
from scheduler.domain.identity import Scope
from scheduler.domain.reservations import Reservation, ReservationStatus
from scheduler.domain.resources import DeviceRequirements, Taint
from scheduler.services.commands import Page

RESERVATION_COLUMNS = (
    "id, tenant_id, user_id, device_id, status, start_time, end_time, prewarm_at,"
    " remind_before_minutes, requirements, created_at, allocation_id, ended_at, reason,"
    " device_pinned, check_in_minutes, checked_in_at"
)
#: A booking's window on its device, as the overlap checks compare it.
WINDOW = "tstzrange(prewarm_at, end_time)"


def reservation_from_row(row: Row) -> Reservation:
    return Reservation(
        id=row["id"],
        tenant_id=row["tenant_id"],
        user_id=row["user_id"],
        device_id=row["device_id"],
        status=ReservationStatus(row["status"]),
        start_time=row["start_time"],
        end_time=row["end_time"],
        prewarm_at=row["prewarm_at"],
        remind_before_minutes=row["remind_before_minutes"],
        requirements=requirements_from_json(row["requirements"]),
        created_at=row["created_at"],
        allocation_id=row["allocation_id"],
        ended_at=row["ended_at"],
        reason=row["reason"],
        pinned=row["device_pinned"],
        check_in_minutes=row["check_in_minutes"],
        checked_in_at=row["checked_in_at"],
    )


class SqlReservationRepository(SqlRepository):
    async def add(self, r: Reservation) -> None:
        await self._send(
            "INSERT INTO reservations (id, tenant_id, user_id, device_id, status, start_time,"
            " end_time, prewarm_at, remind_before_minutes, requirements, created_at,"
            " device_pinned, check_in_minutes) VALUES (%(id)s, %(tenant_id)s, %(user_id)s,"
            " %(device_id)s, %(status)s, %(start)s, %(end)s, %(prewarm)s, %(remind)s,"
            " %(requirements)s, %(created_at)s, %(pinned)s, %(check_in)s)",
            {
                "id": r.id,
                "tenant_id": r.tenant_id,
                "user_id": r.user_id,
                "device_id": r.device_id,
                "status": r.status.value,
                "start": r.start_time,
                "end": r.end_time,
                "prewarm": r.prewarm_at,
                "remind": r.remind_before_minutes,
                "requirements": Jsonb(requirements_to_json(r.requirements)),
                "created_at": r.created_at,
                "pinned": r.pinned,
                "check_in": r.check_in_minutes,
            },
        )

    async def get(
        self, reservation_id: uuid.UUID, scope: Scope, *, lock: bool = False
    ) -> Reservation | None:
        params: dict[str, Any] = {"id": reservation_id}
        row = await self._row(
            f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = %(id)s AND "
            + scope_sql(scope, params)
            + (" FOR UPDATE" if lock else ""),
            params,
        )
        return reservation_from_row(row) if row else None

    async def lock_device(self, device_id: uuid.UUID) -> bool:
        """Hold the device's row: bookings, leases and extensions of one device serialize."""
        row = await self._row(
            "SELECT id FROM devices WHERE id = %(id)s AND status <> 'retired' FOR UPDATE",
            {"id": device_id},
        )
        return row is not None

    async def conflicts(
        self,
        device_ids: Sequence[uuid.UUID],
        prewarm_at: datetime,
        end_time: datetime,
        reset: timedelta,
        exclude: uuid.UUID | None = None,
    ) -> list[tuple[uuid.UUID, datetime, datetime, uuid.UUID]]:
        """What already holds any of these devices during ``[prewarm_at, end_time)``: other
        bookings, and a running lease (until its expiry plus a reset); with their tenant."""
        rows = await self._rows(
            "SELECT device_id, start_time AS starts, end_time AS ends, tenant_id"
            f" FROM reservations WHERE device_id = ANY(%(ids)s) AND status IN ('pending', 'active')"
            f" AND {WINDOW} && tstzrange(%(prewarm)s, %(end)s)"
            " AND id IS DISTINCT FROM %(exclude)s"
            " UNION ALL SELECT device_id, allocated_at, expires_at, tenant_id FROM allocations"
            " WHERE device_id = ANY(%(ids)s) AND status = 'active'"
            " AND expires_at + %(reset)s > %(prewarm)s"
            " ORDER BY starts LIMIT 20",
            {
                "ids": list(device_ids),
                "prewarm": prewarm_at,
                "end": end_time,
                "exclude": exclude,
                "reset": reset,
            },
        )
        return [(r["device_id"], r["starts"], r["ends"], r["tenant_id"]) for r in rows]

    async def device_placement(
        self, device_id: uuid.UUID
    ) -> tuple[DeviceStatus, NodeStatus, tuple[Taint, ...]] | None:
        """A device's status, its node's status and taints (``None``: no such device)."""
        row = await self._row(
            "SELECT d.status, n.status AS node_status, n.taints FROM devices d"
            " JOIN nodes n ON n.id = d.node_id WHERE d.id = %(id)s",
            {"id": device_id},
        )
        if row is None:
            return None
        taints = tuple(Taint(**t) for t in row["taints"])
        return DeviceStatus(row["status"]), NodeStatus(row["node_status"]), taints

    async def tenant_holdings(
        self,
        tenant_id: uuid.UUID,
        prewarm_at: datetime,
        end_time: datetime,
        exclude: uuid.UUID | None = None,
    ) -> tuple[int, int]:
        """The tenant's bookings and leases that overlap ``[prewarm_at, end_time)``, and its
        pending bookings in all, ``exclude`` aside (the caller holds the tenant's row)."""
        row = await self._row(
            "SELECT (SELECT count(*) FROM reservations WHERE tenant_id = %(t)s"
            f"  AND status IN ('pending', 'active') AND {WINDOW} && tstzrange(%(p)s, %(e)s)"
            "  AND id IS DISTINCT FROM %(x)s)"
            " + (SELECT count(*) FROM allocations a WHERE a.tenant_id = %(t)s"
            "  AND a.status = 'active' AND a.expires_at > %(p)s AND a.allocated_at < %(e)s"
            "  AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.allocation_id = a.id"
            "   AND r.status = 'active')) AS overlapping,"
            " (SELECT count(*) FROM reservations WHERE tenant_id = %(t)s"
            "  AND status = 'pending' AND id IS DISTINCT FROM %(x)s) AS pending",
            {"t": tenant_id, "p": prewarm_at, "e": end_time, "x": exclude},
        )
        assert row is not None
        return int(row["overlapping"]), int(row["pending"])

    async def free_candidates(
        self,
        requirements: DeviceRequirements,
        prewarm_at: datetime,
        end_time: datetime,
        reset: timedelta,
    ) -> CandidateDevices:
        """Matching devices on ready nodes that nothing holds during the window."""
        clauses, params = matching_clauses(requirements)
        params.update(prewarm=prewarm_at, end=end_time, reset=reset)
        taints = ", n.taints" if requirements.tolerations else ""
        rows = await self._rows(
            "SELECT array_agg(d.id ORDER BY d.id) AS ids, count(*) AS free, d.cpu_cores,"
            f" d.memory_mb, d.storage_mb, d.node_id, n.max_devices{taints}"
            " FROM devices d JOIN nodes n ON n.id = d.node_id"
            " WHERE d.status IN ('available', 'allocated', 'resetting', 'provisioning') AND "
            + " AND ".join(clauses)
            + " AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.device_id = d.id"
            f"  AND r.status IN ('pending', 'active') AND tstzrange(r.prewarm_at, r.end_time)"
            "  && tstzrange(%(prewarm)s, %(end)s))"
            " AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.device_id = d.id"
            "  AND a.status = 'active' AND a.expires_at + %(reset)s > %(prewarm)s)"
            f" GROUP BY d.node_id, n.max_devices, d.cpu_cores, d.memory_mb, d.storage_mb{taints}",
            params,
        )
        return class_candidates(tolerated(rows, requirements))

    async def matching_device_ids(self, requirements: DeviceRequirements) -> list[uuid.UUID]:
        clauses, params = matching_clauses(requirements)
        rows = await self._rows(
            "SELECT d.id, n.taints FROM devices d JOIN nodes n ON n.id = d.node_id"
            " WHERE d.status NOT IN ('retired', 'failed') AND " + " AND ".join(clauses),
            params,
        )
        return [r["id"] for r in tolerated(rows, requirements)]

    async def update_window(
        self,
        reservation_id: uuid.UUID,
        device_id: uuid.UUID,
        start: datetime,
        end: datetime,
        prewarm_at: datetime,
    ) -> None:
        await self._send(
            "UPDATE reservations SET device_id = %(device)s, start_time = %(start)s,"
            " end_time = %(end)s, prewarm_at = %(prewarm)s, reminded_at = NULL,"
            " prewarmed_at = NULL WHERE id = %(id)s",
            {
                "id": reservation_id,
                "device": device_id,
                "start": start,
                "end": end,
                "prewarm": prewarm_at,
            },
        )

    async def end(
        self,
        reservation_id: uuid.UUID,
        status: ReservationStatus,
        now: datetime,
        reason: str | None,
    ) -> None:
        await self._send(
            "UPDATE reservations SET status = %(status)s, ended_at = %(now)s, reason = %(reason)s"
            " WHERE id = %(id)s AND status IN ('pending', 'active')",
            {"id": reservation_id, "status": status.value, "now": now, "reason": reason},
        )

    async def activate(
        self, reservation_id: uuid.UUID, allocation_id: uuid.UUID | None, device_id: uuid.UUID
    ) -> None:
        await self._send(
            "UPDATE reservations SET status = 'active', allocation_id = %(allocation)s,"
            " device_id = %(device)s WHERE id = %(id)s",
            {"id": reservation_id, "allocation": allocation_id, "device": device_id},
        )

    async def complete_for(self, allocation_id: uuid.UUID, now: datetime) -> None:
        """The booking a lease came from is completed when the lease ends."""
        await self._send(
            "UPDATE reservations SET status = 'completed', ended_at = %(now)s"
            " WHERE allocation_id = %(id)s AND status = 'active'",
            {"id": allocation_id, "now": now},
        )

    async def check_in(self, reservation_id: uuid.UUID, now: datetime) -> None:
        """Record its user's check-in (the first one counts)."""
        await self._send(
            "UPDATE reservations SET checked_in_at = coalesce(checked_in_at, %(now)s)"
            " WHERE id = %(id)s",
            {"id": reservation_id, "now": now},
        )

    async def no_shows(self, now: datetime, limit: int) -> list[Reservation]:
        """Started bookings whose user did not check in within their window (not held: the
        caller locks their lease first, then the booking, as a lease's end does)."""
        rows = await self._rows(
            f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE status = 'active'"
            " AND check_in_minutes > 0 AND checked_in_at IS NULL AND start_time <= %(now)s"
            " AND start_time + make_interval(mins => check_in_minutes) <= %(now)s"
            " ORDER BY start_time LIMIT %(limit)s",
            {"now": now, "limit": limit},
        )
        return [reservation_from_row(r) for r in rows]

    async def lock_pending_on(self, device_id: uuid.UUID) -> list[Reservation]:
        """The device's bookings not started yet, held."""
        rows = await self._rows(
            f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE device_id = %(id)s"
            " AND status = 'pending' ORDER BY start_time FOR UPDATE",
            {"id": device_id},
        )
        return [reservation_from_row(r) for r in rows]

    async def lock_pending_of(self, holder: Scope) -> list[Reservation]:
        """The bookings not started yet of a user (in every tenant) or of a tenant, held."""
        params: dict[str, Any] = {}
        rows = await self._rows(
            f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE status = 'pending'"
            f" AND {scope_sql(holder, params)} ORDER BY start_time FOR UPDATE",
            params,
        )
        return [reservation_from_row(r) for r in rows]

    async def lock_starting(self, now: datetime, limit: int, grace: timedelta) -> list[Reservation]:
        """Bookings whose start has come; one whose device is still being readied waits for
        it up to ``grace`` past its start (then it is placed elsewhere or fails)."""
        rows = await self._rows(
            f"SELECT {', '.join('r.' + c.strip() for c in RESERVATION_COLUMNS.split(','))}"
            " FROM reservations r JOIN devices d ON d.id = r.device_id"
            " WHERE r.status = 'pending' AND r.start_time <= %(now)s"
            " AND NOT (d.status IN ('resetting', 'provisioning')"
            "  AND r.start_time > %(now)s - %(grace)s)"
            " ORDER BY r.start_time LIMIT %(limit)s FOR UPDATE OF r SKIP LOCKED",
            {"now": now, "limit": limit, "grace": grace},
        )
        return [reservation_from_row(r) for r in rows]

    async def lock_to_prewarm(self, now: datetime, limit: int) -> list[Reservation]:
        rows = await self._rows(
            f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE status = 'pending'"
            " AND prewarmed_at IS NULL AND prewarm_at <= %(now)s ORDER BY prewarm_at"
            " LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
            {"now": now, "limit": limit},
        )
        return [reservation_from_row(r) for r in rows]

    async def lock_to_remind(self, now: datetime, limit: int) -> list[Reservation]:
        rows = await self._rows(
            f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE status = 'pending'"
            " AND reminded_at IS NULL"
            " AND start_time - make_interval(mins => remind_before_minutes) <= %(now)s"
            " ORDER BY start_time LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
            {"now": now, "limit": limit},
        )
        return [reservation_from_row(r) for r in rows]

    async def mark(self, column: str, ids: Sequence[uuid.UUID], now: datetime) -> None:
        assert column in ("reminded_at", "prewarmed_at")
        await self._send(
            f"UPDATE reservations SET {column} = %(now)s WHERE id = ANY(%(ids)s)",
            {"ids": list(ids), "now": now},
        )

    async def next_start(self) -> datetime | None:
        """The next moment a pending booking needs work (reminder, pre-warm or start)."""
        row = await self._row(
            "SELECT min(least(start_time, CASE WHEN prewarmed_at IS NULL THEN prewarm_at END,"
            " CASE WHEN reminded_at IS NULL THEN start_time -"
            " make_interval(mins => remind_before_minutes) END)) AS due"
            " FROM reservations WHERE status = 'pending'"
        )
        return row["due"] if row else None

    async def next_booking_after(self, device_id: uuid.UUID, after: datetime) -> datetime | None:
        """When the device's next booking needs it (its pre-warm start)."""
        row = await self._row(
            "SELECT min(prewarm_at) AS at FROM reservations WHERE device_id = %(id)s"
            " AND status = 'pending' AND end_time > %(after)s",
            {"id": device_id, "after": after},
        )
        return row["at"] if row else None

    async def list(
        self,
        scope: Scope,
        status: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> Page[Reservation]:
        params: dict[str, Any] = {"limit": limit + 1}
        where = scope_sql(scope, params)
        if status is not None:
            where += " AND status = %(status)s"
            params["status"] = status
        if since is not None:
            where += " AND end_time > %(since)s"
            params["since"] = since
        if until is not None:
            where += " AND start_time < %(until)s"
            params["until"] = until
        total = await self._row(f"SELECT count(*) AS n FROM reservations WHERE {where}", params)
        if cursor:
            at, last_id = decode_cursor(cursor, timestamp, uuid.UUID)
            where += " AND (start_time, id) > (%(c_at)s::timestamptz, %(c_id)s::uuid)"
            params.update(c_at=at, c_id=last_id)
        rows = await self._rows(
            f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE {where}"
            " ORDER BY start_time, id LIMIT %(limit)s",
            params,
        )
        items = [reservation_from_row(r) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(items[-1].start_time.isoformat(), items[-1].id)
        return Page(items, int(total["n"]) if total else 0, next_cursor)

    async def stats(self, scope: Scope, now: datetime) -> dict[str, Any]:
        params: dict[str, Any] = {"now": now}
        where = scope_sql(scope, params)
        row = await self._row(
            "SELECT count(*) AS total,"
            " count(*) FILTER (WHERE status = 'pending') AS pending,"
            " count(*) FILTER (WHERE status = 'active') AS active,"
            " count(*) FILTER (WHERE status = 'completed') AS completed,"
            " count(*) FILTER (WHERE status = 'cancelled') AS cancelled,"
            " count(*) FILTER (WHERE status = 'failed') AS failed,"
            " count(*) FILTER (WHERE status = 'pending' AND start_time < %(now)s + interval '1 day')"
            "   AS starting_within_day"
            f" FROM reservations WHERE {where}",
            params,
        )
        assert row is not None
        return {k: int(v) for k, v in row.items()}
