"""Bodies of the job records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from scheduler.domain.jobs import Job, JobError
from serve.schemas.base import Out


class JobProgressOut(Out):
    done: int
    total: int
    #: 0–100, one decimal.
    percent: float


class JobErrorOut(Out):
    index: int
    item: str
    code: str
    message: str

    @classmethod
    def of(cls, e: JobError) -> JobErrorOut:
        return cls(index=e.index, item=e.item, code=e.code, message=e.message)


class JobOut(Out):
    """A job; its work ``items`` only when read alone (``null`` in lists)."""

    id: uuid.UUID
    kind: str
    status: str
    progress: JobProgressOut
    counts: dict[str, int]
    errors: list[JobErrorOut]
    params: dict[str, Any]
    items: list[dict[str, Any]] | None = None
    result: dict[str, Any] | None
    message: str | None
    createdBy: str
    createdAt: datetime
    updatedAt: datetime
    finishedAt: datetime | None

    @classmethod
    def of(cls, j: Job, *, with_items: bool = True) -> JobOut:
        return cls(
            id=j.id,
            kind=j.kind,
            status=j.status.value,
            progress=JobProgressOut(done=j.done, total=j.total, percent=j.percent),
            counts=dict(j.counts),
            errors=[JobErrorOut.of(e) for e in j.errors],
            params=dict(j.params),
            items=[dict(i) for i in j.items] if with_items else None,
            result=None if j.result is None else dict(j.result),
            message=j.message,
            createdBy=j.created_by,
            createdAt=j.created_at,
            updatedAt=j.updated_at,
            finishedAt=j.finished_at,
        )


class JobPage(Out):
    items: list[JobOut]
    total: int
    nextCursor: str | None
