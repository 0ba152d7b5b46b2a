"""Every bad request gets a clear 4xx problem+json with a stable code, and changes nothing."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.builders import auth, in_pool, new_pool, new_tenant, new_token

pytestmark = pytest.mark.integration


def assert_problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code and body["status"] == status
    assert body["title"] and body["detail"] and body["type"]


@pytest.fixture
async def user(client: httpx.AsyncClient, admin_token: str) -> tuple[dict[str, str], str]:
    tenant = await new_tenant(client, admin_token, max_devices=1)
    return tenant, await new_token(client, admin_token, tenant["id"], "bob")


async def test_missing_and_invalid_tokens_are_401(client: httpx.AsyncClient) -> None:
    r = await client.post("/scheduler/devices/allocate", json={})
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    r = await client.get("/scheduler/allocations", headers=auth("pf_not_a_token"))
    assert_problem(r, 401, "unauthorized")
    r = await client.get("/scheduler/allocations", headers={"Authorization": "Basic abc"})
    assert_problem(r, 401, "unauthorized")
    # authentication comes first: an anonymous caller learns nothing about the body
    r = await client.post(
        "/scheduler/devices/allocate",
        headers={"content-type": "application/json"},
        content=b"{not json",
    )
    assert_problem(r, 401, "unauthorized")
    r = await client.get("/scheduler/no-such-route")
    assert_problem(r, 401, "unauthorized")


async def test_malformed_json_is_400_and_unknown_or_invalid_fields_are_422(
    client: httpx.AsyncClient, user: tuple[dict[str, str], str]
) -> None:
    _, token = user
    headers = {**auth(token), "content-type": "application/json"}
    r = await client.post("/scheduler/devices/allocate", headers=headers, content=b"{not json")
    assert_problem(r, 400, "malformed_json")
    r = await client.post("/scheduler/devices/allocate", headers=headers, content=b"[1, 2]")
    assert_problem(r, 400, "malformed_json")
    r = await client.post(
        "/scheduler/devices/allocate",
        headers=auth(token),
        json={"durationMinutes": 30, "colour": "blue"},
    )
    assert_problem(r, 422, "validation_error")
    assert r.json()["errors"][0]["loc"] == ["body", "colour"]
    for duration in (0, -5, 1441, "sixty", 1.5):
        r = await client.post(
            "/scheduler/devices/allocate", headers=auth(token), json={"durationMinutes": duration}
        )
        assert_problem(r, 422, "validation_error")
    r = await client.post("/scheduler/devices/release", headers=auth(token), json={})
    assert_problem(r, 422, "validation_error")
    r = await client.post(
        "/scheduler/devices/release", headers=auth(token), json={"allocationId": "not-a-uuid"}
    )
    assert_problem(r, 422, "validation_error")


async def test_unknown_ids_routes_and_methods_are_404_or_405(
    client: httpx.AsyncClient, admin_token: str, user: tuple[dict[str, str], str]
) -> None:
    _, token = user
    r = await client.get(f"/scheduler/allocations/{uuid.uuid4()}", headers=auth(token))
    assert_problem(r, 404, "allocation_not_found")
    r = await client.post(
        "/scheduler/devices/release", headers=auth(token), json={"allocationId": str(uuid.uuid4())}
    )
    assert_problem(r, 404, "allocation_not_found")
    r = await client.get(f"/scheduler/nodes/{uuid.uuid4()}", headers=auth(admin_token))
    assert_problem(r, 404, "node_not_found")
    r = await client.post(
        f"/scheduler/nodes/{uuid.uuid4()}/devices",
        headers=auth(admin_token),
        json={
            "count": 1,
            "spec": {"cpuCores": 1, "memoryMB": 1, "storageMB": 1, "androidVersion": "13"},
        },
    )
    assert_problem(r, 404, "node_not_found")
    r = await client.get("/scheduler/nowhere", headers=auth(token))
    assert_problem(r, 404, "not_found")
    r = await client.put("/scheduler/devices/allocate", headers=auth(token))
    assert_problem(r, 405, "method_not_allowed")


async def test_another_tenants_allocation_is_invisible_and_cannot_be_released(
    client: httpx.AsyncClient, admin_token: str, user: tuple[dict[str, str], str]
) -> None:
    _, token = user
    pool = await new_pool(client, admin_token, devices=1)
    other_tenant = await new_tenant(client, admin_token)
    other = await new_token(client, admin_token, other_tenant["id"], "carol")
    grant = (
        await client.post("/scheduler/devices/allocate", headers=auth(other), json=in_pool(pool))
    ).json()
    r = await client.get(f"/scheduler/allocations/{grant['allocationId']}", headers=auth(token))
    assert_problem(r, 404, "allocation_not_found")
    for body in ({"allocationId": grant["allocationId"]}, {"deviceId": grant["deviceId"]}):
        r = await client.post("/scheduler/devices/release", headers=auth(token), json=body)
        assert_problem(r, 404, "allocation_not_found")
    r = await client.get(f"/scheduler/allocations/{grant['allocationId']}", headers=auth(other))
    assert r.json()["status"] == "active"
    r = await client.get("/scheduler/allocations", headers=auth(token))
    assert grant["allocationId"] not in [a["id"] for a in r.json()["items"]]


async def test_roles_limit_who_may_act_for_whom(
    client: httpx.AsyncClient, admin_token: str, user: tuple[dict[str, str], str]
) -> None:
    tenant, token = user
    pool = await new_pool(client, admin_token, devices=1)
    r = await client.post(
        "/scheduler/devices/allocate",
        headers=auth(token),
        json=in_pool(pool, userId="somebody-else"),
    )
    assert_problem(r, 403, "forbidden")
    service = await new_token(client, admin_token, tenant["id"], "ci-bot", role="service")
    r = await client.post("/scheduler/devices/allocate", headers=auth(service), json=in_pool(pool))
    assert_problem(r, 422, "invalid_request")
    r = await client.post(
        "/scheduler/devices/allocate", headers=auth(service), json=in_pool(pool, userId="bob")
    )
    assert r.status_code == 201 and r.json()["userId"] == "bob"
    # the user sees the lease its tenant's service made for it, and may release it
    r = await client.post(
        "/scheduler/devices/release",
        headers=auth(token),
        json={"allocationId": r.json()["allocationId"]},
    )
    assert r.status_code == 200
    for path, body in (
        ("/scheduler/nodes", {}),
        ("/scheduler/admin/tenants", {}),
        ("/scheduler/allocations/release-expired", None),
    ):
        r = await client.post(path, headers=auth(token), json=body)
        assert r.status_code in (403, 422), r.text
    r = await client.post("/scheduler/allocations/release-expired", headers=auth(token))
    assert_problem(r, 403, "forbidden")
    r = await client.get("/scheduler/nodes", headers=auth(token))
    assert_problem(r, 403, "forbidden")


async def test_capacity_and_quota_refusals_have_their_codes(
    client: httpx.AsyncClient, admin_token: str, user: tuple[dict[str, str], str]
) -> None:
    _, token = user
    pool = await new_pool(client, admin_token, devices=2)
    r = await client.post(
        "/scheduler/devices/allocate",
        headers=auth(token),
        json=in_pool(pool, preferredSpecs={"minCpu": 64}),
    )
    assert_problem(r, 422, "unsatisfiable")  # no device of the fleet could ever serve it
    r = await client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
    assert r.status_code == 201
    r = await client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
    assert_problem(r, 403, "quota_exceeded")
    other_tenant = await new_tenant(client, admin_token)
    other = await new_token(client, admin_token, other_tenant["id"], "dora")
    r = await client.post("/scheduler/devices/allocate", headers=auth(other), json=in_pool(pool))
    assert r.status_code == 201
    r = await client.post("/scheduler/devices/allocate", headers=auth(other), json=in_pool(pool))
    assert_problem(r, 409, "no_capacity")  # matching devices exist, all are leased
    r = await client.post(
        f"/scheduler/nodes/{pool.node['id']}/devices",
        headers=auth(admin_token),
        json={
            "count": 1,
            "spec": {"cpuCores": 1, "memoryMB": 1, "storageMB": 1, "androidVersion": "13"},
        },
    )
    assert_problem(r, 409, "node_capacity_exceeded")


async def test_bad_query_parameters_are_422(
    client: httpx.AsyncClient, user: tuple[dict[str, str], str]
) -> None:
    _, token = user
    for params in ({"limit": 501}, {"limit": 0}, {"status": "sleeping"}, {"cursor": "%%%"}):
        r = await client.get("/scheduler/allocations", headers=auth(token), params=params)
        assert r.status_code == 422, (params, r.text)
    r = await client.get(
        "/scheduler/devices/available", headers=auth(token), params={"label": "no-colon"}
    )
    assert_problem(r, 422, "invalid_request")
    r = await client.post(
        "/scheduler/devices/allocate",
        headers={**auth(token), "Idempotency-Key": "x" * 201},
        json={},
    )
    assert_problem(r, 422, "invalid_request")


async def test_duplicate_names_are_409(client: httpx.AsyncClient, admin_token: str) -> None:
    tenant = await new_tenant(client, admin_token)
    r = await client.post(
        "/scheduler/admin/tenants",
        headers=auth(admin_token),
        json={
            "name": tenant["name"],
            "quota": {"maxDevices": 1, "cpuCores": 1, "memoryMB": 1, "storageMB": 1},
        },
    )
    assert_problem(r, 409, "already_exists")
    r = await client.post(
        "/scheduler/admin/tokens",
        headers=auth(admin_token),
        json={"tenantId": str(uuid.uuid4()), "userId": "x", "role": "user"},
    )
    assert_problem(r, 404, "tenant_not_found")


async def test_admin_writes_honour_idempotency_keys(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    """A retried token or device creation must not mint a second token or double the fleet."""
    tenant_id = (await client.get("/scheduler/admin/tenants", headers=auth(admin_token))).json()[0][
        "id"
    ]
    headers = {**auth(admin_token), "Idempotency-Key": uuid.uuid4().hex}
    body = {"tenantId": tenant_id, "userId": "once", "role": "user"}
    first = await client.post("/scheduler/admin/tokens", headers=headers, json=body)
    again = await client.post("/scheduler/admin/tokens", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    # the replay names the same token, and never carries its secret (stored only hashed)
    assert first.json()["token"] and again.json()["token"] is None
    assert first.json()["id"] == again.json()["id"]
    assert {k: v for k, v in first.json().items() if k != "token"} == {
        k: v for k, v in again.json().items() if k != "token"
    }
    assert again.headers.get("idempotent-replayed") == "true"

    node = (
        await client.post(
            "/scheduler/nodes",
            headers=auth(admin_token),
            json={
                "name": f"idem-{uuid.uuid4().hex[:8]}",
                "capacity": {"cpuCores": 8, "memoryMB": 8192, "storageMB": 65536, "maxDevices": 4},
            },
        )
    ).json()
    headers = {**auth(admin_token), "Idempotency-Key": uuid.uuid4().hex}
    devices = {
        "count": 2,
        "spec": {"cpuCores": 1, "memoryMB": 1024, "storageMB": 4096, "androidVersion": "13"},
    }
    for _ in range(3):
        r = await client.post(
            f"/scheduler/nodes/{node['id']}/devices", headers=headers, json=devices
        )
        assert r.status_code == 201
    r = await client.get(f"/scheduler/nodes/{node['id']}", headers=auth(admin_token))
    assert sum(r.json()["devices"].values()) == 2
    r = await client.post(
        f"/scheduler/nodes/{node['id']}/devices", headers=headers, json={**devices, "count": 1}
    )
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused"
