"""The usage report job on real PostgreSQL: totals per tenant, user and device equal the sums
of the usage records clipped to the window, to the second; its record shows the outcome; a
job that cannot write its file fails and says why."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.config import Settings
from scheduler.jobs import usage_report
from tests.builders import auth, in_pool, new_pool, new_tenant, new_token, run_sql, settle

pytestmark = pytest.mark.integration

WINDOW = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))
#: (user, start offset from the window's start, seconds): inside, straddling either edge,
#: and one outside.
LEASES = [
    ("ann", timedelta(hours=1), 600),
    ("ann", timedelta(hours=-1), 7_200),  # the last hour inside
    ("bob", timedelta(hours=23, minutes=30), 3_600),  # the first half hour inside
    ("bob", timedelta(hours=30), 60),  # outside
]


async def _tenant_with_usage(
    client: httpx.AsyncClient, admin: str, services: Services
) -> dict[str, Any]:
    pool = await new_pool(client, admin, devices=2)
    tenant = await new_tenant(client, admin)
    tokens = {u: await new_token(client, admin, tenant["id"], u) for u in ("ann", "bob")}
    for user, offset, seconds in LEASES:
        await settle(services)  # the device the last lease left is reset
        r = await client.post(
            "/scheduler/devices/allocate", headers=auth(tokens[user]), json=in_pool(pool)
        )
        assert r.status_code == 201, r.text
        lease = r.json()["allocationId"]
        await client.post(
            "/scheduler/devices/release", headers=auth(tokens[user]), json={"allocationId": lease}
        )
        start = WINDOW[0] + offset
        await run_sql(
            services,
            "UPDATE usage_records SET started_at = %(s)s, ended_at = %(e)s,"
            " duration_seconds = %(d)s WHERE allocation_id = %(a)s",
            {"s": start, "e": start + timedelta(seconds=seconds), "d": seconds, "a": lease},
        )
    return tenant


def _expected(rows: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[int, int]]:
    """(level, key) → (leases, seconds) from the records, clipped by hand."""
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        start, end = max(r["started_at"], WINDOW[0]), min(r["ended_at"], WINDOW[1])
        if end <= start:
            continue
        seconds = int((end - start).total_seconds())
        for key in (
            ("tenant", str(r["tenant_id"])),
            ("user", r["user_id"]),
            ("device", str(r["device_id"])),
        ):
            sums[key][0] += 1
            sums[key][1] += seconds
    return {k: (v[0], v[1]) for k, v in sums.items()}


async def test_the_report_adds_up_the_records_of_the_window_to_the_second(
    client: httpx.AsyncClient,
    admin_token: str,
    services: Services,
    settings: Settings,
    tmp_path: Path,
) -> None:
    tenant = await _tenant_with_usage(client, admin_token, services)
    out = tmp_path / "usage.csv"
    args = usage_report.parse_args(
        [
            "--from", WINDOW[0].isoformat(), "--to", WINDOW[1].isoformat(),
            "--tenant", tenant["id"], "--out", str(out),
        ]
    )  # fmt: skip

    job = await usage_report.run(args, settings)

    with out.open() as f:
        report = list(csv.DictReader(f))
    records = await run_sql(
        services, "SELECT * FROM usage_records WHERE tenant_id = %(t)s", {"t": tenant["id"]}
    )
    expected = _expected(records)
    got = {
        (
            r["level"],
            r["tenant_id"] if r["level"] == "tenant" else r["user_id"] or r["device_id"],
        ): (
            int(r["leases"]),
            int(r["seconds"]),
        )
        for r in report
    }
    assert got == expected
    assert got[("tenant", tenant["id"])] == (3, 600 + 3_600 + 1_800)
    assert [r["level"] for r in report][:3] == ["tenant", "user", "user"]
    record = (await client.get(f"/scheduler/jobs/{job.job_id}", headers=auth(admin_token))).json()
    assert record["kind"] == "usage_report" and record["status"] == "succeeded"
    assert record["progress"]["done"] == record["progress"]["total"] == len(report)
    assert record["result"]["out"] == str(out.resolve())
    assert record["result"]["seconds"] == 6_000
    assert not out.with_name("usage.csv.partial").exists()


async def test_the_report_as_json_lines_carries_the_resource_seconds(
    client: httpx.AsyncClient, admin_token: str, services: Services, settings: Settings,
    tmp_path: Path,
) -> None:  # fmt: skip
    tenant = await _tenant_with_usage(client, admin_token, services)
    out = tmp_path / "usage.jsonl"
    args = usage_report.parse_args(
        [
            "--from", WINDOW[0].isoformat(), "--to", WINDOW[1].isoformat(),
            "--tenant", tenant["id"], "--format", "jsonl", "--out", str(out),
        ]
    )  # fmt: skip

    await usage_report.run(args, settings)

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    total = next(line for line in lines if line["level"] == "tenant")
    assert total["seconds"] == 6_000
    assert total["core_seconds"] == pytest.approx(6_000 * 2.0)  # new_pool's 2-core devices


async def test_a_report_that_cannot_be_written_fails_and_says_why(
    client: httpx.AsyncClient, admin_token: str, settings: Settings, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    args = usage_report.parse_args(
        [
            "--from", WINDOW[0].isoformat(), "--to", WINDOW[1].isoformat(),
            "--out", str(blocker / "usage.csv"),
        ]
    )  # fmt: skip

    with pytest.raises(OSError):
        await usage_report.run(args, settings)

    listed = (
        await client.get(
            "/scheduler/jobs",
            headers=auth(admin_token),
            params={"kind": "usage_report", "status": "failed"},
        )
    ).json()
    failed = next(j for j in listed["items"] if j["params"]["out"] == str(blocker / "usage.csv"))
    assert failed["message"].startswith(("NotADirectoryError", "FileExistsError"))
    assert failed["finishedAt"] is not None


def test_bad_arguments_are_refused_before_anything_runs() -> None:
    for argv in (
        ["--from", "2026-11-01T00:00:00", "--to", "2026-11-02T00:00:00Z", "--out", "x"],
        ["--from", "2026-11-02T00:00:00Z", "--to", "2026-11-01T00:00:00Z", "--out", "x"],
        ["--from", "2026-11-01T00:00:00Z", "--to", "2026-11-02T00:00:00Z"],
        ["--from", "x", "--to", "2026-11-02T00:00:00Z", "--out", "x"],
    ):
        with pytest.raises(SystemExit) as exit_:
            usage_report.parse_args(argv)
        assert exit_.value.code == 2
