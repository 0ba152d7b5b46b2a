"""Jobs through ``ray job submit`` on the running fleet, with token auth, exactly as the README
shows them: the job finds the fleet's database by itself, writes its file, and its record
(``GET /scheduler/jobs``) carries the Ray submission id and its outcome."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from scheduler.cli.cluster_ports import ClusterPorts
from tests.e2e.conftest import E2E_HTTP_PORT, RunningFleet, auth, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _submit(fleet: RunningFleet, submission_id: str, *entrypoint: str) -> str:
    dashboard = ClusterPorts.from_http_port(E2E_HTTP_PORT).dashboard
    env = {
        **fleet.env,
        "RAY_AUTH_MODE": "token",
        "RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{dashboard}",
    }
    ray = str(Path(sys.executable).parent / "ray")
    done = subprocess.run(
        [ray, "job", "submit", "--submission-id", submission_id, "--", *entrypoint],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_usage_report_submitted_to_ray_writes_its_file_and_its_record(
    http: httpx.Client, fleet: RunningFleet, tmp_path: Path
) -> None:
    out = tmp_path / "usage.csv"
    submission = f"usage-{uuid.uuid4().hex[:8]}"

    logs = _submit(
        fleet,
        submission,
        "python", "-m", "scheduler.jobs.usage_report",
        "--from", "2026-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z",
        "--out", str(out),
    )  # fmt: skip

    assert "succeeded" in logs
    assert out.read_text().startswith("level,tenant_id,user_id,device_id,leases,seconds")
    listed = http.get(
        "/scheduler/jobs", headers=auth(fleet.admin_token), params={"kind": "usage_report"}
    ).json()
    (record,) = [j for j in listed["items"] if j["params"].get("rayJobId") == submission]
    assert record["status"] == "succeeded" and record["createdBy"] == f"ray-job:{submission}"
    assert record["result"]["out"] == str(out)


def test_a_fleet_imported_through_ray_is_provisioned_by_the_node_actors(
    http: httpx.Client, fleet: RunningFleet, tmp_path: Path
) -> None:
    name = f"imported-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "fleet.csv"
    path.write_text(
        "node,host,cpu_cores,memory_mb,storage_mb,max_devices,labels,taints,devices,"
        "device_cpu_cores,device_memory_mb,device_storage_mb,android_version,device_labels\n"
        f"{name},10.9.0.1,16,65536,1048576,3,pool={name},,3,2,4096,32768,13,\n"
        f"{name}-bad,10.9.0.2,16,65536,1048576,3,pool {name},,3,2,4096,32768,13,\n"
    )

    logs = _submit(
        fleet, f"import-{name}", "python", "-m", "scheduler.jobs.import_fleet", "--file", str(path)
    )

    assert "line 3: labels" in logs  # the bad row, by line, with its reason
    admin = auth(fleet.admin_token)
    (node,) = http.get("/scheduler/nodes", headers=admin, params={"label": f"pool:{name}"}).json()

    def provisioned() -> bool:
        devices = http.get(f"/scheduler/nodes/{node['id']}", headers=admin).json()["devices"]
        return devices.get("available") == 3

    eventually(provisioned, timeout=30)


def test_a_replay_runs_its_policies_as_ray_tasks(
    http: httpx.Client, fleet: RunningFleet, tmp_path: Path
) -> None:
    trace = tmp_path / "small.swf"
    trace.write_text(
        "\n".join(
            " ".join(map(str, [i + 1, i * 30, -1, 300, 1, -1, -1, 1, 300, -1, 1, i % 3]))
            for i in range(30)
        )
        + "\n"
    )
    submission = f"replay-{uuid.uuid4().hex[:8]}"

    logs = _submit(
        fleet,
        submission,
        "python", "-m", "scheduler.jobs.replay", "--trace", str(trace),
        "--policy", "fifo", "--policy", "strong-fair-share", "--devices", "2",
    )  # fmt: skip

    assert "fifo: 30 jobs on 2 devices" in logs and "strong-fair-share: 30 jobs" in logs
    listed = http.get(
        "/scheduler/jobs", headers=auth(fleet.admin_token), params={"kind": "replay"}
    ).json()
    (record,) = [j for j in listed["items"] if j["params"].get("rayJobId") == submission]
    assert record["status"] == "succeeded"
    assert [r["policy"] for r in record["result"]["reports"]] == ["fifo", "strong-fair-share"]
