"""The platform console's "tasks": queue entries and leases seen as one list of work, each
``pending``, ``running``, ``completed`` or ``failed``.

A queue entry that got its device is shown as its lease (the lease carries the entry's last
priority); a lease that never waited has priority 0. What a status covers is one table, so a
filter on it is a filter on the native statuses the database indexes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class TaskSource(StrEnum):
    LEASE = "lease"
    QUEUE = "queue"


#: The native statuses each task status covers, per source. A cancelled or timed-out entry
#: never ran: failed; a revoked lease was taken away: failed.
COVERS: dict[TaskStatus, dict[TaskSource, tuple[str, ...]]] = {
    TaskStatus.PENDING: {TaskSource.QUEUE: ("waiting",)},
    TaskStatus.RUNNING: {TaskSource.LEASE: ("active",)},
    TaskStatus.COMPLETED: {TaskSource.LEASE: ("released", "expired")},
    TaskStatus.FAILED: {
        TaskSource.LEASE: ("revoked",),
        TaskSource.QUEUE: ("cancelled", "timed_out", "failed"),
    },
}


def native_statuses(source: TaskSource, wanted: TaskStatus | None) -> tuple[str, ...]:
    """The statuses of ``source`` rows a listing of ``wanted`` (``None``: every task) reads."""
    return tuple(
        native
        for status, by_source in COVERS.items()
        if wanted in (None, status)
        for native in by_source.get(source, ())
    )


def task_status(source: TaskSource, native: str) -> TaskStatus:
    """Raises:
    ValueError: a status no task shows (a fulfilled entry: its lease is the task).
    """
    for status, by_source in COVERS.items():
        if native in by_source.get(source, ()):
            return status
    raise ValueError(f"no task status for a {source.value} that is {native!r}")


@dataclass(frozen=True, slots=True)
class Task:
    id: uuid.UUID
    source: TaskSource
    #: The entry's or lease's own status.
    state: str
    device_id: uuid.UUID | None
    node_id: uuid.UUID | None
    priority: float
    created_at: datetime
    started_at: datetime | None

    @property
    def status(self) -> TaskStatus:
        return task_status(self.source, self.state)
