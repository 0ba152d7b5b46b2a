"""Job records: the durable record of a long-running background job (a fleet rebalance the
housekeeper runs, a job submitted to Ray): what it was asked (``params``), its work items, how
far it got, what failed on the way, and how it ended."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class JobError:
    """A work item that failed: its position among the job's items, what it was (e.g. a
    lease's id), and the error's stable code and detail."""

    index: int
    item: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Job:
    id: uuid.UUID
    kind: str
    status: JobStatus
    created_by: str
    created_at: datetime
    updated_at: datetime
    params: Mapping[str, Any] = field(default_factory=dict)
    #: The job's work items (e.g. the moves a rebalance planned), in order.
    items: tuple[Mapping[str, Any], ...] = ()
    total: int = 0
    done: int = 0
    #: Outcomes so far by name (e.g. ``{"moved": 3, "skipped": 1}``).
    counts: Mapping[str, int] = field(default_factory=dict)
    errors: tuple[JobError, ...] = ()
    result: Mapping[str, Any] | None = None
    message: str | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status is not JobStatus.RUNNING

    @property
    def percent(self) -> float:
        """How much of the work is done, 0–100 to one decimal (a finished job with no work
        items is done: 100)."""
        if self.total == 0:
            return 100.0 if self.finished else 0.0
        return round(self.done * 100 / self.total, 1)
