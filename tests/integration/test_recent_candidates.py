"""Allocations rank the candidates this process read lately for alike requests
(``RecentCandidates``), and that read is only ever a hint: every lease it leads to is checked
again in its grant, and what it cannot serve is read afresh."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from scheduler.adapters import sql_candidates, sql_fleet
from scheduler.bootstrap import Services
from scheduler.domain.resources import DeviceRequirements
from tests.builders import auth, in_pool, new_pool, new_tenant, new_token, settle, unique

pytestmark = pytest.mark.integration


@pytest.fixture
def fleet_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the reads of candidate classes (one entry per read)."""
    reads: list[int] = []
    query = sql_fleet.candidate_query

    def counted(*args: Any) -> Any:
        reads.append(1)
        return query(*args)

    monkeypatch.setattr(sql_fleet, "candidate_query", counted)
    return reads


async def _allocate(client: httpx.AsyncClient, token: str, body: dict[str, Any]) -> Any:
    return await client.post("/scheduler/devices/allocate", headers=auth(token), json=body)


async def test_alike_requests_rank_one_read_and_never_get_one_device_twice(
    client: httpx.AsyncClient, admin_token: str, services: Services, fleet_reads: list[int]
) -> None:
    pool = await new_pool(client, admin_token, devices=3)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "alike")

    granted = [await _allocate(client, token, in_pool(pool)) for _ in range(3)]

    assert [r.status_code for r in granted] == [201, 201, 201]
    assert len({r.json()["deviceId"] for r in granted}) == 3
    assert services.recent_candidates is not None
    assert services.recent_candidates.get(DeviceRequirements(labels=pool.label)) is not None
    assert len(fleet_reads) == 1  # the first read served all three
    refused = await _allocate(client, token, in_pool(pool))
    assert refused.status_code == 409  # the kept read offers nothing: a fresh read agrees
    assert len(fleet_reads) == 2


async def test_a_device_released_after_the_read_is_found_by_a_fresh_one(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "again")
    first = await _allocate(client, token, in_pool(pool))
    await client.post(
        "/scheduler/devices/release",
        headers=auth(token),
        json={"allocationId": first.json()["allocationId"]},
    )
    await settle(services)  # reset: available again

    again = await _allocate(client, token, in_pool(pool))

    assert again.status_code == 201, again.text
    assert again.json()["deviceId"] == first.json()["deviceId"]


async def test_a_tenant_the_kept_best_class_does_not_fit_gets_one_it_fits(
    client: httpx.AsyncClient,
    admin_token: str,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kept read ranks for every tenant (quota aside): with one class kept, a tenant whose
    quota that class exceeds is served by a read of its own, not refused."""
    monkeypatch.setattr(sql_candidates, "RANKED_CLASSES", 1)
    label = {"pool": unique("quota-pool")}
    admin = auth(admin_token)
    devices = []
    for cpu, memory_mb in ((1, 3072), (2, 2048)):  # the first fits best, the second is smaller
        node = await client.post(
            "/scheduler/nodes",
            headers=admin,
            json={
                "name": unique("node"),
                "labels": label,
                "capacity": {
                    "cpuCores": 64,
                    "memoryMB": 10**6,
                    "storageMB": 10**8,
                    "maxDevices": 1,
                },
            },
        )
        spec = {"cpuCores": cpu, "memoryMB": memory_mb, "storageMB": 8192, "androidVersion": "13"}
        added = await client.post(
            f"/scheduler/nodes/{node.json()['id']}/devices",
            headers=admin,
            json={"count": 1, "spec": spec},
        )
        assert added.status_code == 201, added.text
        devices.append(added.json()[0]["id"])
    best_fit, smaller = devices
    roomy = await new_token(client, admin_token, (await new_tenant(client, admin_token))["id"], "u")
    tight = await new_tenant(client, admin_token, memory_mb=2500)
    tight_token = await new_token(client, admin_token, tight["id"], "tight")
    body = {"durationMinutes": 30, "preferredSpecs": {"labels": label}}

    best = await _allocate(client, roomy, body)  # keeps the read: the 3072 MB device only
    assert best.status_code == 201 and best.json()["deviceId"] == best_fit
    await client.post(
        "/scheduler/devices/release",
        headers=auth(roomy),
        json={"allocationId": best.json()["allocationId"]},
    )
    await settle(services)

    fitted = await _allocate(client, tight_token, body)

    assert fitted.status_code == 201, fitted.text
    assert fitted.json()["deviceId"] == smaller
