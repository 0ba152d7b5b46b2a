"""The fleet import job on real PostgreSQL: every bad row reported by its place with its
reason while the good ones are applied through the API's commands; a rerun creates nothing
twice; a dry run creates nothing; a node that exists otherwise is left as it is."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.config import Settings
from scheduler.jobs import import_fleet
from tests.builders import auth, run_sql, settle

pytestmark = pytest.mark.integration

HEADER = (
    "node,host,cpu_cores,memory_mb,storage_mb,max_devices,labels,taints,devices,"
    "device_cpu_cores,device_memory_mb,device_storage_mb,android_version,device_labels"
)


def _csv(tmp_path: Path, prefix: str) -> Path:
    lines = [
        HEADER,
        f"{prefix}-a,10.0.0.1,64,262144,4194304,10,region=eu;zone=a,,4,2,4096,32768,13,",
        f"{prefix}-a,,,,,,,,2,4,8192,65536,14,tier=gold",
        f"{prefix}-b,10.0.0.2,32,131072,2097152,4,region=us,gpu=true:NoSchedule,3,2,4096,32768,13,",
        f"{prefix}-c,10.0.0.3,64,262144,4194304,10,region eu,,1,2,4096,32768,13,",  # bad label
        f"{prefix}-d,10.0.0.4,64,262144,4194304,10,,,-1,2,4096,32768,13,",  # bad count
        f"{prefix}-e,10.0.0.5,64,262144,4194304,2,,,5,2,4096,32768,13,",  # over capacity
    ]
    path = tmp_path / "fleet.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


async def _devices(services: Services, node_name: str) -> list[dict[str, Any]]:
    return await run_sql(
        services,
        "SELECT d.* FROM devices d JOIN nodes n ON n.id = d.node_id WHERE n.name = %(n)s",
        {"n": node_name},
    )


async def _record(client: httpx.AsyncClient, admin: str, job: Any) -> dict[str, Any]:
    r = await client.get(f"/scheduler/jobs/{job.job_id}", headers=auth(admin))
    return dict(r.json())


async def test_an_import_applies_the_good_rows_reports_the_bad_and_reruns_to_nothing(
    client: httpx.AsyncClient,
    admin_token: str,
    services: Services,
    settings: Settings,
    tmp_path: Path,
) -> None:
    prefix = f"imp-{uuid.uuid4().hex[:6]}"
    path = _csv(tmp_path, prefix)

    job = await import_fleet.run(import_fleet.parse_args(["--file", str(path)]), settings)

    record = await _record(client, admin_token, job)
    assert record["status"] == "succeeded"
    assert record["result"] == {
        "dryRun": False, "nodesCreated": 3, "devicesCreated": 9, "rows": 6, "badRows": 2,
    }  # fmt: skip
    assert record["counts"] == {"invalid": 2, "created": 3, "failed": 1}
    errors = {e["item"]: (e["code"], e["message"]) for e in record["errors"]}
    assert errors["line 5"][0] == "invalid_row" and "key=value" in errors["line 5"][1]
    assert errors["line 6"][0] == "invalid_row" and "count" in errors["line 6"][1]
    assert errors["line 7"][0] == "node_capacity_exceeded"
    a = await _devices(services, f"{prefix}-a")
    assert sorted((d["cpu_cores"], d["android_version"], d["labels"]) for d in a) == [
        *[(2.0, "13", {})] * 4,
        *[(4.0, "14", {"tier": "gold"})] * 2,
    ]
    b = (await run_sql(services, "SELECT * FROM nodes WHERE name = %(n)s", {"n": f"{prefix}-b"}))[0]
    assert b["labels"] == {"region": "us"} and b["taints"][0]["key"] == "gpu"
    assert len(await _devices(services, f"{prefix}-e")) == 0  # its node, not its devices
    await settle(services)
    assert {d["status"] for d in await _devices(services, f"{prefix}-a")} == {"available"}

    again = await import_fleet.run(import_fleet.parse_args(["--file", str(path)]), settings)

    rerun = await _record(client, admin_token, again)
    assert rerun["result"]["nodesCreated"] == rerun["result"]["devicesCreated"] == 0
    assert rerun["counts"] == {"invalid": 2, "unchanged": 3, "failed": 1}
    assert len(await _devices(services, f"{prefix}-a")) == 6


async def test_a_dry_run_reports_what_it_would_create_and_creates_nothing(
    client: httpx.AsyncClient,
    admin_token: str,
    services: Services,
    settings: Settings,
    tmp_path: Path,
) -> None:
    name = f"dry-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "fleet.json"
    node = {
        "name": name,
        "capacity": {"cpuCores": 8, "memoryMB": 16384, "storageMB": 131072, "maxDevices": 4},
        "devices": [
            {
                "count": 4,
                "spec": {
                    "cpuCores": 2,
                    "memoryMB": 4096,
                    "storageMB": 32768,
                    "androidVersion": "13",
                },
            }
        ],
    }
    path.write_text(json.dumps({"nodes": [node, {"name": "bad name!", "capacity": {}}]}))

    job = await import_fleet.run(
        import_fleet.parse_args(["--file", str(path), "--dry-run"]), settings
    )

    record = await _record(client, admin_token, job)
    assert record["result"]["nodesCreated"] == 1 and record["result"]["devicesCreated"] == 4
    assert record["counts"] == {"invalid": 1, "would_create": 1}
    assert record["errors"][0]["item"] == "nodes[1]"
    assert await run_sql(services, "SELECT 1 FROM nodes WHERE name = %(n)s", {"n": name}) == []


async def test_a_node_that_exists_otherwise_is_reported_and_left_as_it_is(
    client: httpx.AsyncClient,
    admin_token: str,
    services: Services,
    settings: Settings,
    tmp_path: Path,
) -> None:
    prefix = f"dif-{uuid.uuid4().hex[:6]}"
    path = _csv(tmp_path, prefix)
    await import_fleet.run(import_fleet.parse_args(["--file", str(path)]), settings)
    path.write_text(path.read_text().replace(",4,region=us,", ",6,region=us,"))

    job = await import_fleet.run(import_fleet.parse_args(["--file", str(path)]), settings)

    record = await _record(client, admin_token, job)
    (differs,) = [e for e in record["errors"] if e["code"] == "node_differs"]
    assert differs["item"] == "line 4" and "maxDevices" in differs["message"]
    node = await run_sql(
        services, "SELECT max_devices FROM nodes WHERE name = %(n)s", {"n": f"{prefix}-b"}
    )
    assert node[0]["max_devices"] == 4


def test_only_json_and_csv_files_are_taken() -> None:
    with pytest.raises(SystemExit):
        import_fleet.parse_args(["--file", "fleet.yaml"])
