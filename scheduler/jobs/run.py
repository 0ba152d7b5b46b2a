"""One run of a job: its record and its progress bar, kept together.

``async with JobRun(services, kind, params) as run:`` records the job (running), then the job
calls ``run.expect(total)`` once it knows its work, ``run.advance(outcome)`` per item (an
error names the item and never stops the job) and sets ``run.result``; on leaving, the
record is finished: succeeded, or failed with the exception's message (which is raised on).
Progress reaches the record at most every ``FLUSH_SECONDS`` and at the end, so a job of a
million rows does not write a million times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from scheduler.bootstrap import Services, build_services
from scheduler.config import Settings
from scheduler.domain.jobs import Job, JobError, JobStatus
from scheduler.services import job_records

#: Longest time between two writes of a job's progress to its record.
FLUSH_SECONDS = 1.0
#: Set in the entrypoint of a job sent with ``ray job submit`` (its config and metadata).
RAY_JOB_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def run_job(
    argv: Sequence[str] | None,
    parse_args: Callable[[Sequence[str] | None], argparse.Namespace],
    run: Callable[[argparse.Namespace], Awaitable[object]],
) -> None:
    """A job's entrypoint: its arguments parsed (exit 2 on bad ones), then the job run; a
    job that fails prints why and exits 1 (its record says why too)."""
    args = parse_args(argv)
    try:
        asyncio.run(run(args))
    except Exception:
        traceback.print_exc()
        sys.exit(1)


def ray_submission_id() -> str | None:
    """The submission id of the Ray job this process is the entrypoint of, if any."""
    config = os.environ.get(RAY_JOB_ENV)
    if not config:
        return None
    metadata = json.loads(config).get("metadata") or {}
    return metadata.get("job_submission_id") or metadata.get("job_name")


def job_services(settings: Settings) -> Services:
    """The services of a job that acts on devices. Inside the cluster (``RAY_ADDRESS`` set, as
    for every ``ray job submit`` entrypoint) the node actors provision and reset devices and
    the queue actor drains, as for the API; from a plain shell, this process does."""
    address = os.environ.get("RAY_ADDRESS")
    if not address:
        return build_services(settings)
    from actors.node_actor import RayDeviceLifecycle
    from actors.queue_actor import RayQueueDispatcher
    from actors.ray_client import connect

    connect(address)
    return build_services(
        settings,
        RayDeviceLifecycle(settings),
        lambda changes: RayQueueDispatcher(settings, changes),
    )


def progress_bar(kind: str, total: int = 0) -> Any:
    """``tqdm_ray`` inside a Ray job (the dashboard draws it), plain ``tqdm`` elsewhere."""
    if ray_submission_id() is not None:
        from ray.experimental.tqdm_ray import tqdm as ray_tqdm

        return ray_tqdm(desc=kind, total=total)
    from tqdm import tqdm

    return tqdm(desc=kind, total=total)


class JobRun:
    def __init__(self, services: Services, kind: str, params: Mapping[str, Any]) -> None:
        self._services = services
        self._kind = kind
        submission = ray_submission_id()
        self._params = {**params, **({"rayJobId": submission} if submission else {})}
        self._by = f"ray-job:{submission}" if submission else "cli"
        self.job: Job | None = None
        self.total = 0
        self.done = 0
        self.counts: Counter[str] = Counter()
        self.result: dict[str, Any] | None = None
        self._errors: list[JobError] = []
        self._flushed_at = 0.0
        self._bar: Any = None

    @property
    def job_id(self) -> Any:
        assert self.job is not None, "the run has not started"
        return self.job.id

    async def __aenter__(self) -> JobRun:
        services = self._services
        self.job = await job_records.start_job(
            services.uow, kind=self._kind, params=self._params, by=self._by, now=services.clock()
        )
        self._bar = progress_bar(self._kind)
        print(f"job {self.job.id} ({self._kind}): GET /scheduler/jobs/{self.job.id}", flush=True)
        return self

    def expect(self, total: int) -> None:
        """The job has ``total`` items to do."""
        self.total = total
        self._bar.total = total
        self._bar.refresh()

    async def advance(self, outcome: str = "done", *, error: JobError | None = None) -> None:
        """One item done, counted under ``outcome`` (with its error, if it failed)."""
        self.done += 1
        self.counts[outcome] += 1
        if error is not None:
            self._errors.append(error)
        self._bar.update(1)
        if time.monotonic() - self._flushed_at >= FLUSH_SECONDS:
            await self._flush()

    async def _flush(self) -> None:
        services = self._services
        await job_records.record_progress(
            services.uow,
            self.job_id,
            done=self.done,
            total=max(self.total, self.done),
            counts=dict(self.counts),
            new_errors=self._errors,
            now=services.clock(),
        )
        self._errors = []
        self._flushed_at = time.monotonic()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        services = self._services
        if self._bar is not None:
            self._bar.close()
        if self.job is None:
            return
        await self._flush()
        message = None if error is None else f"{type(error).__name__}: {error}"[:500]
        await job_records.finish_job(
            services.uow,
            self.job_id,
            status=JobStatus.FAILED if error is not None else JobStatus.SUCCEEDED,
            result=self.result,
            message=message,
            now=services.clock(),
        )
        print(f"job {self.job_id}: {'failed: ' + message if message else 'succeeded'}", flush=True)
