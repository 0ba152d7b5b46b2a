"""The console mount's translations, as pure functions: its envelope, the node status changes
it asks for, task statuses, and trend windows."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.domain.errors import InvalidRequest
from scheduler.domain.tasks import COVERS, TaskSource, TaskStatus, native_statuses, task_status
from scheduler.domain.usage_stats import MAX_TREND_HOURS, trend_window
from scheduler.services.commands import SetNodeSchedulable
from scheduler.services.node_operations import DrainNode, SetMaintenance
from serve.cloudphone.bodies import status_command
from serve.cloudphone.envelope import envelope
from serve.cloudphone.views import NODE_STATUS

NODE = uuid.uuid4()
NOW = datetime(2026, 12, 8, 12, 30, tzinfo=UTC)
SCOPE = {
    "path": "/cloudphone/scheduler/nodes",
    "query_string": b"page=1",
    "headers": [(b"x-request-id", b"req-1")],
}


def test_a_success_is_wrapped_with_its_path_and_request_id() -> None:
    wrapped = envelope(201, json.dumps({"id": "n1"}).encode(), SCOPE)
    assert wrapped["success"] is True and wrapped["data"] == {"id": "n1"}
    assert (wrapped["path"], wrapped["requestId"]) == (
        "/cloudphone/scheduler/nodes?page=1",
        "req-1",
    )
    datetime.fromisoformat(wrapped["timestamp"])


def test_a_problem_becomes_the_original_error_shape() -> None:
    problem = {"status": 404, "code": "node_not_found", "detail": "No such node exists."}
    wrapped = envelope(404, json.dumps(problem).encode(), {**SCOPE, "headers": []})
    assert {k: wrapped[k] for k in ("success", "statusCode", "message", "errorCode")} == {
        "success": False,
        "statusCode": 404,
        "message": "No such node exists.",
        "errorCode": "node_not_found",
    }
    uuid.UUID(wrapped["requestId"])  # one is made up when the gateway sent none


@pytest.mark.parametrize(
    ("current", "wanted", "command"),
    [
        ("ready", "maintenance", SetMaintenance(NODE, True)),
        ("maintenance", "maintenance", None),
        ("maintenance", "active", SetMaintenance(NODE, False)),
        ("cordoned", "active", SetNodeSchedulable(NODE, True)),
        ("ready", "active", None),
        ("ready", "inactive", SetNodeSchedulable(NODE, False)),
        ("offline", "inactive", None),
        ("ready", "draining", DrainNode(NODE)),
        ("draining", "draining", None),
        # the command refuses what the state forbids (409), the mount does not decide it
        ("offline", "active", SetNodeSchedulable(NODE, True)),
    ],
)
def test_a_status_the_console_sets_is_the_native_command_for_it(
    current: str, wanted: str, command: object
) -> None:
    assert status_command(NODE, current, wanted) == command  # type: ignore[arg-type]


def test_every_native_node_status_has_a_console_status() -> None:
    from scheduler.domain.fleet import NodeStatus

    assert set(NODE_STATUS) == {s.value for s in NodeStatus}


def test_each_native_status_is_one_task_status() -> None:
    from scheduler.domain.allocations import AllocationStatus
    from scheduler.domain.queueing import QueueStatus

    leases = [s.value for s in AllocationStatus]
    entries = [s.value for s in QueueStatus if s is not QueueStatus.FULFILLED]
    assert sorted(native_statuses(TaskSource.LEASE, None)) == sorted(leases)
    assert sorted(native_statuses(TaskSource.QUEUE, None)) == sorted(entries)
    assert task_status(TaskSource.QUEUE, "waiting") is TaskStatus.PENDING
    assert task_status(TaskSource.LEASE, "revoked") is TaskStatus.FAILED
    assert native_statuses(TaskSource.LEASE, TaskStatus.PENDING) == ()
    assert set(COVERS) == set(TaskStatus)
    with pytest.raises(ValueError, match="fulfilled"):
        task_status(TaskSource.QUEUE, "fulfilled")


def test_a_trend_window_by_dates_covers_them_rounded_up_to_hours() -> None:
    assert trend_window(None, None, 24, now=NOW) == (NOW, 24)
    start = NOW - timedelta(hours=5, minutes=10)
    assert trend_window(start, None, 24, now=NOW) == (NOW, 6)
    end = NOW - timedelta(days=1)
    assert trend_window(end - timedelta(hours=3), end, 24, now=NOW) == (end, 3)
    # an end in the future is now
    assert trend_window(NOW - timedelta(hours=1), NOW + timedelta(days=3), 24, now=NOW) == (NOW, 1)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (NOW, NOW - timedelta(hours=1)),
        (NOW + timedelta(hours=1), None),
        (NOW - timedelta(hours=MAX_TREND_HOURS + 1), None),
    ],
)
def test_a_trend_window_backwards_or_too_long_is_refused(
    start: datetime, end: datetime | None
) -> None:
    with pytest.raises(InvalidRequest):
        trend_window(start, end, 24, now=NOW)
