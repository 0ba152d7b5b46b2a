"""Failures on the running fleet (Ray node actors, the housekeeper actor, Serve): a device
failed through the simulated driver is reported by its node actor and its lease moves to a
twin; recovered, it is reset and leased again; a node whose heartbeats stop goes offline
(its lease revoked when no twin is free) and comes back as it was."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import OFFLINE_AFTER_SECONDS, RunningFleet, auth, eventually, seed_pool

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_simulated_device_failure_moves_its_lease_and_the_device_recovers(
    http: httpx.Client, fleet: RunningFleet
) -> None:
    pool = seed_pool(http, fleet.admin_token, "failing", devices=2)
    admin = auth(fleet.admin_token)
    grant = http.post(
        "/scheduler/devices/allocate",
        headers=auth(pool.token),
        json={"durationMinutes": 30, "preferredSpecs": pool.specs},
    )
    assert grant.status_code == 201, grant.text
    device = grant.json()["deviceId"]

    failed = http.post(
        f"/scheduler/devices/{device}/simulate", headers=admin, json={"action": "fail"}
    )

    assert failed.status_code == 200 and failed.json()["status"] == "failed", failed.text
    lease = http.get(
        f"/scheduler/allocations/{grant.json()['allocationId']}", headers=auth(pool.token)
    ).json()
    assert lease["status"] == "active" and lease["deviceId"] != device
    recovered = http.post(
        f"/scheduler/devices/{device}/simulate", headers=admin, json={"action": "recover"}
    )
    assert recovered.status_code == 200, recovered.text

    def available() -> bool:
        r = http.get(f"/scheduler/nodes/{pool.node_id}", headers=admin)
        return r.json()["devices"].get("available") == 1

    eventually(available, timeout=30)


def test_a_silent_node_goes_offline_and_comes_back(http: httpx.Client, fleet: RunningFleet) -> None:
    pool = seed_pool(http, fleet.admin_token, "silent", devices=1)
    admin = auth(fleet.admin_token)
    grant = http.post(
        "/scheduler/devices/allocate",
        headers=auth(pool.token),
        json={"durationMinutes": 30, "preferredSpecs": pool.specs},
    )
    assert grant.status_code == 201, grant.text

    r = http.post(
        f"/scheduler/nodes/{pool.node_id}/simulate", headers=admin, json={"action": "fail"}
    )
    assert r.status_code == 200, r.text

    def status() -> str:
        return str(http.get(f"/scheduler/nodes/{pool.node_id}", headers=admin).json()["status"])

    eventually(lambda: status() == "offline", timeout=OFFLINE_AFTER_SECONDS * 4)
    lease = http.get(
        f"/scheduler/allocations/{grant.json()['allocationId']}", headers=auth(pool.token)
    ).json()
    assert (lease["status"], lease["endReason"]) == ("revoked", "node_offline")
    http.post(
        f"/scheduler/nodes/{pool.node_id}/simulate", headers=admin, json={"action": "recover"}
    )
    eventually(lambda: status() == "ready", timeout=OFFLINE_AFTER_SECONDS * 4)
