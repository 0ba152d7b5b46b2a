"""The candidate read ranks classes in SQL and returns the best ``RANKED_CLASSES`` of them:
on a fleet of three times as many classes, the best fit it leads to is the one a read of
every class leads to, for a packing and a spreading strategy (the fleet has one class that
fits best and one node emptiest, so a read that ranked badly would miss them)."""

from __future__ import annotations

import random
import uuid

import httpx
import pytest

from placement.greedy import rank_best_fit
from placement.model import as_vector
from scheduler.adapters import sql_candidates
from scheduler.bootstrap import Services
from scheduler.domain.resources import DeviceRequirements
from tests.builders import auth, new_tenant, unique

pytestmark = pytest.mark.integration


async def _best_class(
    services: Services, tenant: uuid.UUID, label: dict[str, str]
) -> tuple[tuple[float, ...], float]:
    """The size and node occupancy of the best-fitting class the read leads to."""
    requirements = DeviceRequirements(labels=label, min_cpu=1)
    async with services.uow() as uow:
        snapshot = await uow.devices.placement_snapshot(tenant, requirements, lock_tenant=False)
    assert snapshot.tenant is not None
    ranked = rank_best_fit(
        snapshot.candidates,
        as_vector(requirements.minimum),
        as_vector(snapshot.tenant.headroom),
        snapshot.strategy,
    )
    best = ranked[0]
    return (
        tuple(snapshot.candidates.capacity[best]),
        round(float(snapshot.candidates.node_occupancy[best]), 9),
    )


async def _node(
    client: httpx.AsyncClient, admin: dict[str, str], label: dict[str, str], cpu: int, count: int
) -> None:
    """A node of room for 8 devices holding ``count`` (its occupancy: the rest)."""
    node = await client.post(
        "/scheduler/nodes",
        headers=admin,
        json={
            "name": unique("rank-node"),
            "labels": label,
            "capacity": {"cpuCores": 512, "memoryMB": 10**6, "storageMB": 10**8, "maxDevices": 8},
        },
    )
    r = await client.post(
        f"/scheduler/nodes/{node.json()['id']}/devices",
        headers=admin,
        json={
            "count": count,
            "spec": {
                "cpuCores": cpu,
                "memoryMB": 2048 * cpu,
                "storageMB": 32768,
                "androidVersion": "13",
            },
        },
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("strategy", ["binpack", "spread"])
async def test_the_sql_ranked_classes_lead_to_the_best_fit_of_all_classes(
    client: httpx.AsyncClient,
    admin_token: str,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    strategy: str,
) -> None:
    admin = auth(admin_token)
    rng = random.Random(7)
    label = {"pool": unique("ranked")}
    tenant = await new_tenant(client, admin_token)
    for _ in range(sql_candidates.RANKED_CLASSES * 3):
        await _node(client, admin, label, cpu=4, count=rng.randint(1, 6))
    await _node(client, admin, label, cpu=2, count=3)  # the one best fit (binpack)
    await _node(client, admin, label, cpu=4, count=8)  # the one emptiest node (spread)
    await client.post("/scheduler/strategy", headers=admin, json={"strategy": strategy})
    try:
        ranked = await _best_class(services, uuid.UUID(tenant["id"]), label)
        monkeypatch.setattr(sql_candidates, "RANKED_CLASSES", 10_000)
        everything = await _best_class(services, uuid.UUID(tenant["id"]), label)
    finally:
        await client.post("/scheduler/strategy", headers=admin, json={"strategy": "binpack"})

    assert ranked == everything
    assert ranked == (
        ((2.0, 4096.0, 32768.0), 0.625) if strategy == "binpack" else ((4.0, 8192.0, 32768.0), 0.0)
    )
