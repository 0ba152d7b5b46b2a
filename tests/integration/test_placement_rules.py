"""What a request may land on: labels, Android version, sizes, cordons, taints, quota fit;
and the paginated listings."""

from __future__ import annotations

import httpx
import pytest

from tests.builders import auth, in_pool, new_pool, new_tenant, new_token, unique

pytestmark = pytest.mark.integration


@pytest.fixture
async def token(client: httpx.AsyncClient, admin_token: str) -> str:
    tenant = await new_tenant(client, admin_token)
    return await new_token(client, admin_token, tenant["id"], "placer")


async def add_devices(
    client: httpx.AsyncClient,
    admin: str,
    node_id: str,
    count: int,
    cpu: float,
    android: str,
    labels: dict[str, str] | None = None,
) -> list[dict[str, str]]:
    r = await client.post(
        f"/scheduler/nodes/{node_id}/devices",
        headers=auth(admin),
        json={
            "count": count,
            "labels": labels or {},
            "spec": {
                "cpuCores": cpu,
                "memoryMB": 2048 * cpu,
                "storageMB": 16384,
                "androidVersion": android,
            },
        },
    )
    assert r.status_code == 201, r.text
    return list(r.json())


async def test_best_fit_picks_the_smallest_device_that_meets_the_minimum(
    client: httpx.AsyncClient, admin_token: str, token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=0, max_devices=6)
    node = pool.node["id"]
    big = await add_devices(client, admin_token, node, 2, 8, "14")
    small = await add_devices(client, admin_token, node, 2, 2, "13")
    medium = await add_devices(client, admin_token, node, 2, 4, "14", {"gpu": "true"})

    async def allocate(**specs: object) -> httpx.Response:
        return await client.post(
            "/scheduler/devices/allocate",
            headers=auth(token),
            json=in_pool(pool, preferredSpecs=specs),
        )

    r = await allocate(minCpu=3)
    assert r.json()["deviceId"] in {d["id"] for d in medium}
    r = await allocate(minCpu=1)
    assert r.json()["deviceId"] in {d["id"] for d in small}
    r = await allocate(androidVersion="13")
    assert r.json()["deviceId"] in {d["id"] for d in small}
    r = await allocate(androidVersion="13")
    assert r.status_code == 409 and r.json()["code"] == "no_capacity"
    r = await allocate(labels={"gpu": "true"}, minCpu=4)
    assert r.json()["deviceId"] in {d["id"] for d in medium}
    r = await allocate(minCpu=5, minMemory=16000)
    assert r.json()["deviceId"] in {d["id"] for d in big}


async def test_a_cordoned_node_offers_no_devices_until_uncordoned(
    client: httpx.AsyncClient, admin_token: str, token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    r = await client.post(f"/scheduler/nodes/{pool.node['id']}/cordon", headers=auth(admin_token))
    assert r.status_code == 200 and r.json()["status"] == "cordoned"
    r = await client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
    assert r.status_code == 409
    await client.post(f"/scheduler/nodes/{pool.node['id']}/uncordon", headers=auth(admin_token))
    r = await client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
    assert r.status_code == 201


async def test_a_tainted_node_takes_only_requests_that_tolerate_it(
    client: httpx.AsyncClient, admin_token: str, token: str
) -> None:
    label = {"pool": unique("tainted")}
    r = await client.post(
        "/scheduler/nodes",
        headers=auth(admin_token),
        json={
            "name": unique("node"),
            "labels": label,
            "taints": [{"key": "dedicated", "value": "ci", "effect": "NoSchedule"}],
            "capacity": {"cpuCores": 16, "memoryMB": 65536, "storageMB": 10**6, "maxDevices": 2},
        },
    )
    node = r.json()
    await add_devices(client, admin_token, node["id"], 1, 2, "13")
    body = {"durationMinutes": 5, "preferredSpecs": {"labels": label}}
    r = await client.post("/scheduler/devices/allocate", headers=auth(token), json=body)
    # the only devices with that label are on the tainted node: never placeable
    assert r.status_code == 422 and r.json()["code"] == "unsatisfiable", r.text
    assert r.json()["constraint"] == "taints" and "dedicated=ci:NoSchedule" in r.json()["detail"]
    body["preferredSpecs"]["tolerations"] = [{"key": "dedicated", "value": "other"}]
    r = await client.post("/scheduler/devices/allocate", headers=auth(token), json=body)
    assert r.status_code == 422 and r.json()["constraint"] == "taints"
    body["preferredSpecs"]["tolerations"] = [{"key": "dedicated", "value": "ci"}]
    r = await client.post("/scheduler/devices/allocate", headers=auth(token), json=body)
    assert r.status_code == 201, r.text


async def test_a_quota_short_on_cpu_gets_a_device_that_fits_it(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=0, max_devices=3)
    small = await add_devices(client, admin_token, pool.node["id"], 1, 2, "13")
    await add_devices(client, admin_token, pool.node["id"], 2, 1, "13")
    tenant = await new_tenant(client, admin_token, cpu=3)
    token = await new_token(client, admin_token, tenant["id"], "frugal")
    first = await client.post(
        "/scheduler/devices/allocate",
        headers=auth(token),
        json=in_pool(pool, preferredSpecs={"minCpu": 2}),
    )
    assert first.json()["deviceId"] == small[0]["id"]
    second = await client.post(
        "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
    )
    assert second.status_code == 201  # a 1-core device still fits the 1 core left
    third = await client.post(
        "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
    )
    assert third.status_code == 403 and third.json()["code"] == "quota_exceeded"


async def test_listings_page_with_cursors_and_filters(
    client: httpx.AsyncClient, admin_token: str, token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=7)
    label = [f"pool:{pool.label['pool']}"]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 3, "label": label}
        if cursor:
            params["cursor"] = cursor
        page = (
            await client.get("/scheduler/devices/available", headers=auth(token), params=params)
        ).json()
        assert page["total"] == 7
        seen += [d["id"] for d in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(d["id"] for d in pool.devices)

    for _ in range(5):
        await client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
    first = (
        await client.get(
            "/scheduler/allocations", headers=auth(token), params={"limit": 2, "status": "active"}
        )
    ).json()
    assert first["total"] == 5 and len(first["items"]) == 2 and first["nextCursor"]
    rest = (
        await client.get(
            "/scheduler/allocations",
            headers=auth(token),
            params={"limit": 10, "cursor": first["nextCursor"]},
        )
    ).json()
    ids = [a["id"] for a in first["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == 5
    assert (
        await client.get(
            "/scheduler/allocations", headers=auth(token), params={"status": "released"}
        )
    ).json()["total"] == 0


async def test_the_strategy_is_an_admin_setting_validated_and_shown_in_the_config(
    client: httpx.AsyncClient, admin_token: str, token: str
) -> None:
    r = await client.get("/scheduler/config", headers=auth(token))
    assert r.status_code == 200
    assert r.json()["queue"]["starvationBoundMinutes"] == 15.0
    r = await client.post("/scheduler/strategy", headers=auth(token), json={"strategy": "spread"})
    assert r.status_code == 403
    r = await client.post(
        "/scheduler/strategy", headers=auth(admin_token), json={"strategy": "zigzag"}
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    for name in ("spread", "binpack"):
        r = await client.post(
            "/scheduler/strategy", headers=auth(admin_token), json={"strategy": name}
        )
        assert r.status_code == 200 and r.json() == {"strategy": name}
        assert (await client.get("/scheduler/config", headers=auth(token))).json()[
            "strategy"
        ] == name


async def test_dry_runs_explain_placements_and_allocate_nothing(
    client: httpx.AsyncClient, admin_token: str, token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=0, max_devices=3)
    await add_devices(client, admin_token, pool.node["id"], 2, 2, "13", {"region": "eu"})
    await add_devices(client, admin_token, pool.node["id"], 1, 4, "14")
    label = pool.label
    r = await client.post(
        "/scheduler/schedule",
        headers=auth(token),
        json={"preferredSpecs": {"labels": label, "minCpu": 3}},
    )
    assert r.status_code == 200, r.text
    plan = r.json()
    assert len(plan["assignments"]) == 1 and plan["unplaced"] == []
    chosen = plan["assignments"][0]["explanation"]["chosen"]
    assert chosen["nodeId"] == pool.node["id"] and chosen["terms"]

    batch = {
        "requests": [
            {"preferredSpecs": {"labels": {**label, "region": "eu"}}, "priority": 5},
            {"preferredSpecs": {"labels": {**label, "region": "eu"}}, "priority": 5},
            {"preferredSpecs": {"labels": {**label, "region": "eu"}}, "priority": 1},
            {"preferredSpecs": {"labels": {**label, "region": "mars"}}},
        ],
        "strategy": "spread",
        "maxTimeSeconds": 1,
    }
    r = await client.post("/scheduler/schedule/batch", headers=auth(token), json=batch)
    assert r.status_code == 200, r.text
    plan = r.json()
    assert sorted(a["index"] for a in plan["assignments"]) == [0, 1]
    reasons = {u["index"]: u for u in plan["unplaced"]}
    assert reasons[3]["binding"] == "label_selector" and "region=mars" in reasons[3]["reason"]
    assert reasons[2]["binding"] == "taken"
    assert plan["objective"] >= plan["greedyObjective"]
    available = await client.get(
        "/scheduler/devices/available",
        headers=auth(token),
        params={"label": [f"pool:{label['pool']}"]},
    )
    assert available.json()["total"] == 3  # nothing was allocated
    r = await client.post(
        "/scheduler/schedule/batch", headers=auth(token), json={**batch, "strategy": "random"}
    )
    assert r.status_code == 422
    r = await client.post("/scheduler/schedule/batch", headers=auth(token), json={"requests": []})
    assert r.status_code == 422


async def test_the_single_allocate_follows_the_strategy_pack_or_spread(
    client: httpx.AsyncClient, admin_token: str, token: str
) -> None:
    label = {"pool": unique("strategy")}
    nodes = []
    for _ in range(2):
        r = await client.post(
            "/scheduler/nodes",
            headers=auth(admin_token),
            json={
                "name": unique("node"),
                "labels": label,
                "capacity": {
                    "cpuCores": 64,
                    "memoryMB": 65536,
                    "storageMB": 10**6,
                    "maxDevices": 4,
                },
            },
        )
        nodes.append(r.json()["id"])
        await add_devices(client, admin_token, nodes[-1], 4, 2, "13")
    body = {"durationMinutes": 30, "preferredSpecs": {"labels": label}}

    async def node_of_next() -> str:
        r = await client.post("/scheduler/devices/allocate", headers=auth(token), json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["device"]["nodeId"])

    try:
        await client.post(
            "/scheduler/strategy", headers=auth(admin_token), json={"strategy": "spread"}
        )
        assert {await node_of_next(), await node_of_next()} == set(nodes)
        await client.post(
            "/scheduler/strategy", headers=auth(admin_token), json={"strategy": "binpack"}
        )
        packed = [await node_of_next() for _ in range(2)]
        assert packed[0] == packed[1]  # the busier node fills up first
    finally:
        await client.post(
            "/scheduler/strategy", headers=auth(admin_token), json={"strategy": "binpack"}
        )
