"""Reading the job records: long-running background jobs (a fleet rebalance the housekeeper
runs, a job submitted to Ray), for admins; and writing the record of a job submitted to Ray
(``scheduler.jobs``), each write a transaction of its own."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from scheduler.domain.errors import JobNotFound
from scheduler.domain.identity import Principal, require_admin
from scheduler.domain.jobs import Job, JobError, JobStatus
from scheduler.services.commands import Page
from scheduler.services.ports import UnitOfWork, UnitOfWorkFactory


async def get_job(uow: UnitOfWork, principal: Principal, job_id: uuid.UUID) -> Job:
    """The job, with its work items.

    Raises:
        Forbidden: the caller is not an admin.
        JobNotFound: no such job.
    """
    require_admin(principal)
    async with uow:
        job = await uow.jobs.get(job_id)
    if job is None:
        raise JobNotFound()
    return job


async def list_jobs(
    uow: UnitOfWork,
    principal: Principal,
    *,
    kind: str | None,
    status: JobStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[Job]:
    """Newest first, without their work items.

    Raises:
        Forbidden: the caller is not an admin.
        InvalidCursor: ``cursor`` is not one this service issued.
    """
    require_admin(principal)
    async with uow:
        return await uow.jobs.list(kind, status, limit, cursor)


async def start_job(
    uow_factory: UnitOfWorkFactory,
    *,
    kind: str,
    params: Mapping[str, Any],
    by: str,
    now: datetime,
    total: int = 0,
) -> Job:
    """Record a job that starts now, running."""
    job = Job(
        id=uuid.uuid4(),
        kind=kind,
        status=JobStatus.RUNNING,
        created_by=by,
        created_at=now,
        updated_at=now,
        params=params,
        total=total,
    )
    async with uow_factory() as uow:
        await uow.jobs.add(job)
        await uow.commit()
    return job


async def record_progress(
    uow_factory: UnitOfWorkFactory,
    job_id: uuid.UUID,
    *,
    done: int,
    total: int,
    counts: Mapping[str, int],
    new_errors: Sequence[JobError],
    now: datetime,
) -> None:
    async with uow_factory() as uow:
        await uow.jobs.advance(
            job_id, done=done, total=total, counts=counts, new_errors=new_errors, now=now
        )
        await uow.commit()


async def finish_job(
    uow_factory: UnitOfWorkFactory,
    job_id: uuid.UUID,
    *,
    status: JobStatus,
    result: Mapping[str, Any] | None,
    message: str | None,
    now: datetime,
) -> None:
    async with uow_factory() as uow:
        await uow.jobs.finish(job_id, status=status, result=result, message=message, now=now)
        await uow.commit()
