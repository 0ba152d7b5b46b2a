"""SQL repository of the job records: long-running background jobs, their work items,
progress, errors and outcome (the periodic jobs' tick ledger is ``sql_jobs.SqlJobLedger``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from scheduler.adapters.sql_base import (
    Row,
    SqlRepository,
    decode_cursor,
    encode_cursor,
    timestamp,
)
from scheduler.domain.codec import dump
from scheduler.domain.jobs import Job, JobError, JobStatus
from scheduler.services.commands import Page

#: Every column but the work items, which only one job's reading needs (lists stay small).
SUMMARY_COLUMNS = (
    "id, kind, status, params, total, done, counts, errors, result, message, created_by,"
    " created_at, updated_at, finished_at"
)
JOB_COLUMNS = SUMMARY_COLUMNS + ", items"


def job_from_row(row: Row) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        status=JobStatus(row["status"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        params=row["params"],
        items=tuple(row.get("items") or ()),
        total=row["total"],
        done=row["done"],
        counts=row["counts"],
        errors=tuple(
            JobError(e["index"], e["item"], e["code"], e["message"]) for e in row["errors"]
        ),
        result=row["result"],
        message=row["message"],
        finished_at=row["finished_at"],
    )


def _json(value: Any) -> Jsonb:
    """A value as JSON (ids and instants as strings, dataclasses as objects)."""
    return Jsonb(dump(value))


class SqlJobRepository(SqlRepository):
    async def add(self, job: Job) -> None:
        await self._send(
            f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES (%(id)s, %(kind)s, %(status)s,"
            " %(params)s, %(total)s, %(done)s, %(counts)s, %(errors)s, %(result)s,"
            " %(message)s, %(created_by)s, %(created_at)s, %(updated_at)s, %(finished_at)s,"
            " %(items)s)",
            {
                "id": job.id,
                "kind": job.kind,
                "status": job.status.value,
                "params": _json(job.params),
                "total": job.total,
                "done": job.done,
                "counts": _json(job.counts),
                "errors": _json(job.errors),
                "result": None if job.result is None else _json(job.result),
                "message": job.message,
                "created_by": job.created_by,
                "created_at": job.created_at,
                "updated_at": job.updated_at,
                "finished_at": job.finished_at,
                "items": _json(job.items),
            },
        )

    async def get(self, job_id: uuid.UUID, *, lock: bool = False) -> Job | None:
        row = await self._row(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %(id)s"
            + (" FOR NO KEY UPDATE" if lock else ""),
            {"id": job_id},
        )
        return job_from_row(row) if row else None

    async def list(
        self, kind: str | None, status: JobStatus | None, limit: int, cursor: str | None
    ) -> Page[Job]:
        """Newest first, without their work items (``get`` reads them)."""
        params: dict[str, Any] = {"limit": limit + 1}
        where = "true"
        if kind is not None:
            where += " AND kind = %(kind)s"
            params["kind"] = kind
        if status is not None:
            where += " AND status = %(status)s"
            params["status"] = status.value
        total = await self._row(f"SELECT count(*) AS n FROM jobs WHERE {where}", params)
        if cursor:
            at, last_id = decode_cursor(cursor, timestamp, uuid.UUID)
            where += " AND (created_at, id) < (%(c_at)s::timestamptz, %(c_id)s::uuid)"
            params.update(c_at=at, c_id=last_id)
        rows = await self._rows(
            f"SELECT {SUMMARY_COLUMNS} FROM jobs WHERE {where}"
            " ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            params,
        )
        items = [job_from_row(r) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(items[-1].created_at.isoformat(), items[-1].id)
        return Page(items, int(total["n"]) if total else 0, next_cursor)

    async def running(self, kind: str, limit: int) -> list[Job]:
        """The oldest running jobs of ``kind`` no other transaction holds, held until this
        one ends: two workers never take one job, and neither waits for the other."""
        rows = await self._rows(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'running' AND kind = %(kind)s"
            " ORDER BY created_at, id LIMIT %(limit)s FOR NO KEY UPDATE SKIP LOCKED",
            {"kind": kind, "limit": limit},
        )
        return [job_from_row(r) for r in rows]

    async def advance(
        self,
        job_id: uuid.UUID,
        *,
        done: int,
        counts: Mapping[str, int],
        new_errors: Sequence[JobError],
        now: datetime,
        total: int | None = None,
    ) -> None:
        """Progress: ``done`` items (of ``total``, when it is learned only now)."""
        await self._send(
            "UPDATE jobs SET done = %(done)s, total = coalesce(%(total)s, total),"
            " counts = %(counts)s, errors = errors || %(errors)s, updated_at = %(now)s"
            " WHERE id = %(id)s",
            {
                "id": job_id,
                "done": done,
                "total": total,
                "counts": _json(counts),
                "errors": _json(list(new_errors)),
                "now": now,
            },
        )

    async def finish(
        self,
        job_id: uuid.UUID,
        *,
        status: JobStatus,
        result: Mapping[str, Any] | None,
        message: str | None,
        now: datetime,
    ) -> None:
        """End the job: ``status`` succeeded or failed, finished and updated ``now``."""
        await self._send(
            "UPDATE jobs SET status = %(status)s, result = %(result)s, message = %(message)s,"
            " finished_at = %(now)s, updated_at = %(now)s WHERE id = %(id)s",
            {
                "id": job_id,
                "status": status.value,
                "result": None if result is None else _json(result),
                "message": message,
                "now": now,
            },
        )
