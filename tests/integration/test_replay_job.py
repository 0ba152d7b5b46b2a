"""The replay job: a trace replayed under two policies, its report written and recorded."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from scheduler.config import Settings
from scheduler.jobs import replay as replay_job
from tests.builders import auth

pytestmark = pytest.mark.integration


def _swf(tmp_path: Path) -> Path:
    """A small SWF log: 40 jobs of 10 minutes, a minute apart, from four users."""
    lines = ["; a hand-made log"]
    for i in range(40):
        fields = [i + 1, i * 60, -1, 600, 1, -1, -1, 1, 600, -1, 1, i % 4, 1, -1, 1, -1, -1, -1]
        lines.append(" ".join(map(str, fields)))
    path = tmp_path / "small.swf"
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_a_replay_compares_policies_and_records_its_report(
    client: httpx.AsyncClient, admin_token: str, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    args = replay_job.parse_args(
        [
            "--trace", str(_swf(tmp_path)), "--policy", "fifo", "--policy", "priority",
            "--devices", "2", "--load", "2.0", "--out", str(out),
        ]
    )  # fmt: skip

    job = await replay_job.run(args, settings)

    report = json.loads(out.read_text())["reports"]
    assert [r["policy"] for r in report] == ["fifo", "priority"]
    assert all(r["jobs"] == 40 and 0 < r["utilization"] <= 1 for r in report)
    record = (await client.get(f"/scheduler/jobs/{job.job_id}", headers=auth(admin_token))).json()
    assert record["status"] == "succeeded"
    assert record["progress"] == {"done": 2, "total": 2, "percent": 100.0}
    assert record["result"]["reports"] == report


def test_bad_replay_arguments_are_refused(tmp_path: Path) -> None:
    trace = _swf(tmp_path)
    for argv in (
        ["--trace", str(tmp_path / "missing.swf")],
        ["--trace", str(trace), "--policy", "lottery"],
        ["--trace", str(trace), "--devices", "0"],
    ):
        with pytest.raises(SystemExit):
            replay_job.parse_args(argv)
