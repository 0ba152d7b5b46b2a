"""``POST /scheduler/nodes/placement`` on real PostgreSQL: where a new device would go."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest

from scheduler.bootstrap import Services
from tests.builders import auth, new_tenant, new_token, run_sql, unique
from tests.integration.test_bad_input import assert_problem

pytestmark = pytest.mark.integration

SPEC = {"cpuCores": 2, "memoryMB": 4096, "storageMB": 8192, "androidVersion": "13"}


async def _host(
    client: httpx.AsyncClient, admin: str, label: dict[str, str], devices: int, **extra: object
) -> str:
    node = await client.post(
        "/scheduler/nodes",
        headers=auth(admin),
        json={
            "name": unique("host"),
            "labels": label,
            "capacity": {"cpuCores": 16, "memoryMB": 32768, "storageMB": 10**6, "maxDevices": 8},
            **extra,
        },
    )
    assert node.status_code == 201, node.text
    if devices:
        added = await client.post(
            f"/scheduler/nodes/{node.json()['id']}/devices",
            headers=auth(admin),
            json={"count": devices, "spec": SPEC},
        )
        assert added.status_code == 201, added.text
    return str(node.json()["id"])


async def test_a_new_device_goes_where_the_strategy_says(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    label = {"pool": unique("placement")}
    busy = await _host(client, admin_token, label, devices=5)
    idle = await _host(client, admin_token, label, devices=0)
    ask = {"cpuCores": 2, "memoryMB": 4096, "storageMB": 8192, "labels": label}

    packed = await client.post(
        "/scheduler/nodes/placement", headers=auth(admin_token), json={**ask, "strategy": "binpack"}
    )
    spread = await client.post(
        "/scheduler/nodes/placement", headers=auth(admin_token), json={**ask, "strategy": "spread"}
    )
    preferred = await client.post(
        "/scheduler/nodes/placement",
        headers=auth(admin_token),
        json={**ask, "strategy": "binpack", "preferredNodeId": idle},
    )

    assert packed.status_code == 200, packed.text
    assert packed.json()["nodeId"] == busy and packed.json()["strategy"] == "binpack"
    assert packed.json()["utilizationAfter"]["cpu"] == pytest.approx(12 / 16)
    assert 0 <= packed.json()["score"] <= 1000 and packed.json()["reason"].startswith("binpack")
    assert spread.json()["nodeId"] == idle
    assert preferred.json()["nodeId"] == idle and preferred.json()["reason"] == "the preferred host"


async def test_when_no_host_fits_it_says_why(client: httpx.AsyncClient, admin_token: str) -> None:
    label = {"pool": unique("full")}
    await _host(client, admin_token, label, devices=8)  # every slot taken
    await _host(
        client, admin_token, label, devices=0, taints=[{"key": "gpu", "effect": "NoSchedule"}]
    )

    r = await client.post(
        "/scheduler/nodes/placement",
        headers=auth(admin_token),
        json={"cpuCores": 2, "memoryMB": 4096, "labels": label},
    )

    assert_problem(r, 409, "no_capacity")
    assert (
        "1 tainted" in r.json()["detail"] and "1 without a free device slot" in r.json()["detail"]
    )
    tolerated = await client.post(
        "/scheduler/nodes/placement",
        headers=auth(admin_token),
        json={"cpuCores": 2, "memoryMB": 4096, "labels": label, "tolerations": [{"key": "gpu"}]},
    )
    assert tolerated.status_code == 200, tolerated.text


async def test_only_admins_and_services_ask_and_bad_input_is_422(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    tenant = await new_tenant(client, admin_token)
    user = await new_token(client, admin_token, tenant["id"], "someone")
    service = await new_token(client, admin_token, tenant["id"], "svc", role="service")
    ask = {"cpuCores": 1, "memoryMB": 1024}

    assert_problem(
        await client.post("/scheduler/nodes/placement", headers=auth(user), json=ask),
        403,
        "forbidden",
    )
    answered = await client.post("/scheduler/nodes/placement", headers=auth(service), json=ask)
    assert answered.status_code in (200, 409), answered.text
    for bad in ({"cpuCores": 0, "memoryMB": 1}, {"cpuCores": 1}, {**ask, "strategy": "best"}):
        r = await client.post("/scheduler/nodes/placement", headers=auth(admin_token), json=bad)
        assert r.status_code in (400, 422), r.text


def _provision(label: dict[str, str], count: int, **extra: object) -> dict[str, object]:
    return {"count": count, "spec": SPEC | {"storageMB": 8192}, "labels": label, **extra}


async def _devices_on(client: httpx.AsyncClient, admin: str, node_id: str) -> int:
    node = await client.get(f"/scheduler/nodes/{node_id}", headers=auth(admin))
    return sum(node.json()["devices"].values())


async def test_provisioning_spreads_devices_over_the_hosts_and_creates_them(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    label = {"pool": unique("provision")}
    one = await _host(client, admin_token, label, devices=2)
    two = await _host(client, admin_token, label, devices=0)

    dry = await client.post(
        "/scheduler/devices/provision",
        headers=auth(admin_token),
        json=_provision(label, 4, strategy="spread", dryRun=True),
    )
    made = await client.post(
        "/scheduler/devices/provision",
        headers=auth(admin_token),
        json=_provision(label, 4, strategy="spread"),
    )

    assert dry.status_code == 200, dry.text
    assert dry.json()["devices"] == []
    assert made.status_code == 201, made.text
    planned = {p["nodeId"]: p["count"] for p in made.json()["planned"]}
    assert planned == {two: 3, one: 1}  # 2 + 1 against 0 + 3: even counts
    assert dry.json()["planned"] == made.json()["planned"]
    assert {d["status"] for d in made.json()["devices"]} <= {"provisioning", "available"}
    created = await run_sql(
        services,
        "SELECT count(*) AS n FROM outbox_events WHERE type = 'device.created'"
        " AND aggregate_id = ANY(%(ids)s)",
        {"ids": [d["id"] for d in made.json()["devices"]]},
    )
    assert created[0]["n"] == 4  # one event per device created
    assert (
        await _devices_on(client, admin_token, one),
        await _devices_on(client, admin_token, two),
    ) == (3, 3)


async def test_an_atomic_provisioning_that_does_not_fit_creates_nothing(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    label = {"pool": unique("atomic")}
    node = await _host(client, admin_token, label, devices=6)  # 2 slots left

    refused = await client.post(
        "/scheduler/devices/provision", headers=auth(admin_token), json=_provision(label, 3)
    )
    partial = await client.post(
        "/scheduler/devices/provision",
        headers=auth(admin_token),
        json=_provision(label, 3, atomic=False),
    )

    assert_problem(refused, 409, "no_capacity")
    assert "2 of 3 devices fit" in refused.json()["detail"]
    assert partial.status_code == 201 and len(partial.json()["devices"]) == 2
    assert await _devices_on(client, admin_token, node) == 8


async def test_provisionings_racing_for_a_hosts_last_room_never_overfill_it(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    label = {"pool": unique("race")}
    node = await _host(client, admin_token, label, devices=5)  # 3 slots left

    answers = await asyncio.gather(
        *(
            client.post(
                "/scheduler/devices/provision", headers=auth(admin_token), json=_provision(label, 2)
            )
            for _ in range(4)
        )
    )

    created = [r for r in answers if r.status_code == 201]
    assert len(created) == 1, [r.text for r in answers]  # 2 + 2 > 3: one wins whole
    assert all(r.status_code == 409 for r in answers if r.status_code != 201)
    assert await _devices_on(client, admin_token, node) == 7


async def test_a_host_s_overcommit_ratios_let_more_devices_onto_it(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    """16 cores at a cpu allocation rate of 2 take sixteen 2-core devices (8 without)."""
    label = {"pool": unique("overcommit")}
    node = await _host(client, admin_token, label, devices=0, cpuAllocationRate=2.0)
    admin = auth(admin_token)
    shown = await client.get(f"/scheduler/nodes/{node}", headers=admin)
    assert (shown.json()["cpuAllocationRate"], shown.json()["memoryAllocationRate"]) == (2.0, 1.0)
    await client.patch(
        f"/scheduler/nodes/{node}",
        headers=admin,
        json={
            "capacity": {"cpuCores": 16, "memoryMB": 65536, "storageMB": 10**6, "maxDevices": 20}
        },
    )

    made = await client.post(
        "/scheduler/devices/provision", headers=admin, json=_provision(label, 16)
    )
    more = await client.post(
        "/scheduler/devices/provision", headers=admin, json=_provision(label, 1)
    )
    lowered = await client.patch(
        f"/scheduler/nodes/{node}", headers=admin, json={"cpuAllocationRate": 1.5}
    )

    assert made.status_code == 201, made.text
    assert more.status_code == 409 and more.json()["code"] == "no_capacity", more.text
    assert_problem(lowered, 409, "node_capacity_exceeded")
    assert await _devices_on(client, admin_token, node) == 16


async def test_a_provisioning_planned_before_a_drain_committed_creates_nothing_there(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    """The drain holds the host's row when the provisioning, which planned the host while it
    was ready, comes to lock it: once the drain commits, the provisioning sees it draining
    and creates nothing (it never adds devices to a host that is being emptied)."""
    label = {"pool": unique("drain-race")}
    node = await _host(client, admin_token, label, devices=0)
    url = services.settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    async with await psycopg.AsyncConnection.connect(url) as drain:
        await drain.execute("SELECT id FROM nodes WHERE id = %s FOR UPDATE", (node,))
        await drain.execute("UPDATE nodes SET status = 'draining' WHERE id = %s", (node,))
        provision = asyncio.create_task(
            client.post(
                "/scheduler/devices/provision", headers=auth(admin_token), json=_provision(label, 2)
            )
        )
        await asyncio.sleep(0.5)  # planned from the committed state (ready), now waiting
        assert not provision.done()
        await drain.commit()
        answer = await provision

    assert_problem(answer, 409, "node_state_conflict")
    assert "plan again" in answer.json()["detail"]
    assert await _devices_on(client, admin_token, node) == 0
