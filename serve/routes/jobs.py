"""Job records (admin): long-running background jobs (a fleet rebalance, a job submitted to
Ray), newest first, and one job with its work items."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from scheduler.domain.jobs import JobStatus
from scheduler.services import job_records
from serve.deps import PrincipalDep, ServicesDep
from serve.schemas.jobs import JobOut, JobPage

router = APIRouter(prefix="/scheduler/jobs", tags=["jobs"])


@router.get("", response_model=JobPage)
async def list_jobs(
    principal: PrincipalDep,
    services: ServicesDep,
    kind: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JobPage:
    """Jobs newest first, of ``kind`` and ``status`` when given; without their work items
    (``GET /scheduler/jobs/{job_id}`` has them)."""
    page = await job_records.list_jobs(
        services.uow(), principal, kind=kind, status=status, limit=limit, cursor=cursor
    )
    return JobPage(
        items=[JobOut.of(j, with_items=False) for j in page.items],
        total=page.total,
        nextCursor=page.next_cursor,
    )


@router.get("/{job_id}", response_model=JobOut)
async def get_job(job_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep) -> JobOut:
    """The job with its work items, progress, counts, errors and outcome."""
    return JobOut.of(await job_records.get_job(services.uow(), principal, job_id))
