"""Reading the job records: long-running background jobs (a fleet rebalance the housekeeper
runs, a job submitted to Ray), for admins. The jobs themselves write their records through
``uow.jobs``."""

from __future__ import annotations

import uuid

from scheduler.domain.errors import JobNotFound
from scheduler.domain.identity import Principal, require_admin
from scheduler.domain.jobs import Job, JobStatus
from scheduler.services.commands import Page
from scheduler.services.ports import UnitOfWork


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
