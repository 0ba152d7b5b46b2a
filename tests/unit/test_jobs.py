"""Job records as values: their progress in percent, and how the API shows them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from scheduler.domain.jobs import Job, JobError, JobStatus
from scheduler.jobs.run import RAY_JOB_ENV, ray_submission_id
from serve.schemas.jobs import JobOut

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def job(**fields: Any) -> Job:
    return Job(
        id=uuid.UUID(int=1),
        kind="rebalance",
        status=fields.pop("status", JobStatus.RUNNING),
        created_by="admin",
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )


@pytest.mark.parametrize(
    ("total", "done", "status", "percent"),
    [
        (0, 0, JobStatus.RUNNING, 0.0),
        (0, 0, JobStatus.SUCCEEDED, 100.0),
        (0, 0, JobStatus.FAILED, 100.0),
        (3, 0, JobStatus.RUNNING, 0.0),
        (3, 1, JobStatus.RUNNING, 33.3),
        (3, 2, JobStatus.FAILED, 66.7),
        (3, 3, JobStatus.SUCCEEDED, 100.0),
        (1000, 1, JobStatus.RUNNING, 0.1),
    ],
)
def test_percent_is_the_share_done_to_one_decimal(
    total: int, done: int, status: JobStatus, percent: float
) -> None:
    assert job(total=total, done=done, status=status).percent == percent


def test_a_job_with_no_items_is_empty_by_default() -> None:
    plain = job()

    assert (plain.params, plain.items, plain.counts, plain.errors) == ({}, (), {}, ())
    assert (plain.total, plain.done, plain.result, plain.finished_at) == (0, 0, None, None)


def test_the_api_shows_the_items_only_when_asked() -> None:
    shown = job(
        items=({"allocationId": "a"}, {"allocationId": "b"}),
        total=2,
        done=1,
        counts={"moved": 1},
        errors=(JobError(1, "b", "no_capacity", "no device fits"),),
    )

    whole = JobOut.of(shown).model_dump(mode="json")
    listed = JobOut.of(shown, with_items=False).model_dump(mode="json")

    assert whole["items"] == [{"allocationId": "a"}, {"allocationId": "b"}]
    assert listed == {**whole, "items": None}
    assert whole["progress"] == {"done": 1, "total": 2, "percent": 50.0}
    assert whole["errors"] == [
        {"index": 1, "item": "b", "code": "no_capacity", "message": "no device fits"}
    ]
    assert whole["createdBy"] == "admin" and whole["status"] == "running"


def test_a_job_knows_its_ray_submission_id_from_the_entrypoints_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(RAY_JOB_ENV, raising=False)
    assert ray_submission_id() is None
    config = {"runtime_env": {}, "metadata": {"job_submission_id": "usage-1", "job_name": "x"}}
    monkeypatch.setenv(RAY_JOB_ENV, json.dumps(config))
    assert ray_submission_id() == "usage-1"
