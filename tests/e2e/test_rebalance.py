"""A rebalance on the running fleet: planned over HTTP, run by the housekeeper actor as a job
whose progress ``GET /scheduler/jobs/{id}`` shows, the lease moved to the idle node."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import RunningFleet, auth, eventually, seed_pool

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_rebalance_job_spreads_leases_onto_an_idle_node(
    http: httpx.Client, fleet: RunningFleet
) -> None:
    pool = seed_pool(http, fleet.admin_token, "rebalance", devices=2)
    admin = auth(fleet.admin_token)
    idle = http.post(
        "/scheduler/nodes",
        headers=admin,
        json={
            "name": f"{pool.label['pool']}-idle",
            "labels": pool.label,
            "capacity": {"cpuCores": 64, "memoryMB": 10**6, "storageMB": 10**8, "maxDevices": 2},
        },
    ).json()
    http.post(f"/scheduler/nodes/{idle['id']}/cordon", headers=admin)
    added = http.post(
        f"/scheduler/nodes/{idle['id']}/devices",
        headers=admin,
        json={
            "count": 2,
            "spec": {"cpuCores": 2, "memoryMB": 2048, "storageMB": 8192, "androidVersion": "13"},
        },
    )
    assert added.status_code == 201, added.text
    grants = [
        http.post(
            "/scheduler/devices/allocate",
            headers=auth(pool.token),
            json={"durationMinutes": 30, "preferredSpecs": pool.specs},
        ).json()
        for _ in range(2)
    ]
    assert all(g["device"]["nodeId"] == pool.node_id for g in grants), grants
    http.post(f"/scheduler/nodes/{idle['id']}/uncordon", headers=admin)

    r = http.post(
        "/scheduler/rebalance",
        headers=admin,
        json={"strategy": "spread", "maxMoves": 4, "labels": pool.label},
    )

    assert r.status_code == 202, r.text
    (move,) = r.json()["moves"]
    job_id = r.json()["job"]["id"]

    def finished() -> dict[str, object] | None:
        job = http.get(f"/scheduler/jobs/{job_id}", headers=admin).json()
        return job if job["status"] != "running" else None

    job = eventually(finished, timeout=30)
    assert job["status"] == "succeeded" and job["result"] == {"moved": 1, "skipped": 0}, job
    lease = http.get(
        f"/scheduler/allocations/{move['allocationId']}", headers=auth(pool.token)
    ).json()
    assert lease["status"] == "active" and lease["deviceId"] == move["toDeviceId"]
    listed = http.get("/scheduler/jobs", headers=admin, params={"kind": "rebalance"}).json()
    assert job_id in {j["id"] for j in listed["items"]}
