"""Bad input is a 4xx, never a 500 or a stalled queue: bounded numbers and labels, no NUL
characters, typed cursors, bounded bodies, and requests no device could ever serve refused at
once (issue 9, section 1)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from psycopg.types.json import Jsonb

from scheduler.bootstrap import Services
from serve.request_limits import MAX_BODY_BYTES
from tests.builders import auth, in_pool, new_pool, new_tenant, new_token, run_sql, settle
from tests.integration.test_bad_input import assert_problem

pytestmark = pytest.mark.integration

HUGE = int("9" * 400)


@pytest.fixture
async def user(client: httpx.AsyncClient, admin_token: str) -> str:
    tenant = await new_tenant(client, admin_token)
    return await new_token(client, admin_token, tenant["id"], "bounded")


@pytest.mark.parametrize(
    "specs",
    [
        {"minMemory": HUGE},
        {"minStorage": HUGE},
        {"minCpu": 1e300},
        {"minMemory": 16_777_217},
        {"minStorage": -1},
    ],
)
async def test_unbounded_numbers_are_refused_on_every_route_that_takes_specs(
    client: httpx.AsyncClient, services: Services, user: str, specs: dict[str, Any]
) -> None:
    start = (services.clock() + timedelta(hours=2)).isoformat()
    for path, body in (
        ("/scheduler/queue/join", {"durationMinutes": 30, "preferredSpecs": specs}),
        ("/scheduler/devices/allocate", {"preferredSpecs": specs}),
        ("/scheduler/allocations/batch", {"requests": [{"preferredSpecs": specs}]}),
        ("/scheduler/schedule", {"preferredSpecs": specs}),
        ("/scheduler/schedule/batch", {"requests": [{"preferredSpecs": specs}]}),
        (
            "/scheduler/reservations",
            {"startTime": start, "durationMinutes": 30, "preferredSpecs": specs},
        ),
    ):
        r = await client.post(path, headers=auth(user), json=body)
        assert_problem(r, 422, "validation_error")


async def test_quotas_and_node_capacities_are_bounded_by_what_a_fleet_can_hold(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    for quota in (
        {"maxDevices": 1, "cpuCores": 1e300, "memoryMB": 1, "storageMB": 1},
        {"maxDevices": 1, "cpuCores": 1, "memoryMB": HUGE, "storageMB": 1},
        {"maxDevices": 1, "cpuCores": 1, "memoryMB": 1, "storageMB": HUGE},
    ):
        r = await client.post(
            "/scheduler/admin/tenants",
            headers=auth(admin_token),
            json={"name": f"t-{uuid.uuid4().hex[:8]}", "quota": quota},
        )
        assert_problem(r, 422, "validation_error")
    tenant = await new_tenant(client, admin_token)
    r = await client.patch(
        f"/scheduler/admin/tenants/{tenant['id']}",
        headers=auth(admin_token),
        json={"quota": {"maxDevices": 1, "cpuCores": 1, "memoryMB": HUGE, "storageMB": 1}},
    )
    assert_problem(r, 422, "validation_error")


async def test_a_drain_that_meets_a_bad_entry_fails_it_and_serves_the_others(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    """An entry stored before the bounds existed (written here as the old code did) is taken
    out of the queue with its reason; another tenant's waiter is still served."""
    pool = await new_pool(client, admin_token, devices=1)
    bad_tenant = await new_tenant(client, admin_token)
    bad_id = uuid.uuid4()
    await run_sql(
        services,
        "INSERT INTO queue_entries (id, tenant_id, user_id, tier, status, duration_minutes,"
        " requirements, submitted_at, deadline_at) VALUES (%(id)s, %(tenant)s, 'mallory',"
        " 'enterprise', 'waiting', 30, %(req)s, now() - interval '1 minute',"
        " now() + interval '30 minutes')",
        {
            "id": bad_id,
            "tenant": bad_tenant["id"],
            "req": Jsonb(
                {
                    "min_cpu": 0,
                    "min_memory_mb": HUGE,
                    "min_storage_mb": 0,
                    "android_version": None,
                    "labels": pool.label,
                    "tolerations": [],
                }
            ),
        },
    )
    holder_tenant = await new_tenant(client, admin_token)
    holder = await new_token(client, admin_token, holder_tenant["id"], "holder")
    grant = await client.post(
        "/scheduler/devices/allocate", headers=auth(holder), json=in_pool(pool)
    )
    assert grant.status_code == 201
    waiter_tenant = await new_tenant(client, admin_token)
    waiter = await new_token(client, admin_token, waiter_tenant["id"], "waiter")
    joined = await client.post("/scheduler/queue/join", headers=auth(waiter), json=in_pool(pool))
    assert joined.status_code == 201, joined.text
    await settle(services)

    released = await client.post(
        "/scheduler/devices/release",
        headers=auth(holder),
        json={"allocationId": grant.json()["allocationId"]},
    )
    assert released.status_code == 200
    await settle(services)

    served = await client.get(f"/scheduler/queue/{joined.json()['id']}", headers=auth(waiter))
    assert served.json()["status"] == "fulfilled", served.text
    (row,) = await run_sql(
        services, "SELECT status, reason FROM queue_entries WHERE id = %(id)s", {"id": bad_id}
    )
    assert row["status"] == "failed"
    assert "minMemory" in row["reason"]
    (event,) = await run_sql(
        services,
        "SELECT payload FROM outbox_events WHERE type = 'queue.failed' AND aggregate_id = %(id)s",
        {"id": str(bad_id)},
    )
    assert event["payload"]["reason"] == row["reason"]


def _cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode()


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/scheduler/allocations", _cursor("yesterday", str(uuid.uuid4()))),
        ("/scheduler/allocations", _cursor("2026-01-01T00:00:00+00:00", "not-a-uuid")),
        ("/scheduler/allocations", _cursor("2026-01-01T00:00:00", str(uuid.uuid4()))),
        ("/scheduler/queue", _cursor("99999-01-01", str(uuid.uuid4()))),
        ("/scheduler/reservations", _cursor("2026-01-01T00:00:00+00:00", "x")),
        ("/scheduler/devices/available", _cursor("name\x00", str(uuid.uuid4()))),
        ("/scheduler/devices/available", _cursor("name", "00000000-0000")),
        ("/scheduler/allocations", base64.urlsafe_b64encode(b"[1, 2, 3]").decode()),
    ],
)
async def test_a_crafted_cursor_is_422_invalid_cursor(
    client: httpx.AsyncClient, user: str, path: str, cursor: str
) -> None:
    r = await client.get(path, headers=auth(user), params={"cursor": cursor})
    assert_problem(r, 422, "invalid_cursor")


async def test_nul_characters_are_refused_in_bodies_and_urls(
    client: httpx.AsyncClient, admin_token: str, user: str
) -> None:
    for body in (
        {"userId": "bob\x00"},
        {"preferredSpecs": {"labels": {"pool\x00": "a"}}},
        {"preferredSpecs": {"labels": {"pool": "a\x00"}}},
        {"preferredSpecs": {"androidVersion": "13\x00"}},
    ):
        r = await client.post("/scheduler/devices/allocate", headers=auth(user), json=body)
        assert_problem(r, 422, "validation_error")
        assert "NUL" in r.json()["detail"]
    r = await client.post(
        "/scheduler/nodes",
        headers=auth(admin_token),
        json={
            "name": "node-1",
            "labels": {"zone": "a\x00"},
            "capacity": {"cpuCores": 8, "memoryMB": 8192, "storageMB": 8192, "maxDevices": 1},
        },
    )
    assert_problem(r, 422, "validation_error")
    r = await client.get("/scheduler/allocations?userId=bob%00", headers=auth(user))
    assert_problem(r, 422, "validation_error")
    r = await client.get("/scheduler/devices/available?label=a:b%00", headers=auth(user))
    assert_problem(r, 422, "validation_error")


async def test_label_keys_and_values_are_bounded_as_kubernetes_bounds_them(
    client: httpx.AsyncClient, admin_token: str, user: str
) -> None:
    for labels in ({"k" * 64: "v"}, {"k": "v" * 254}, {"": "v"}):
        r = await client.post(
            "/scheduler/devices/allocate",
            headers=auth(user),
            json={"preferredSpecs": {"labels": labels}},
        )
        assert_problem(r, 422, "validation_error")
    r = await client.post(
        "/scheduler/nodes",
        headers=auth(admin_token),
        json={
            "name": f"node-{uuid.uuid4().hex[:8]}",
            "labels": {"k" * 63: "v" * 253},
            "capacity": {"cpuCores": 8, "memoryMB": 8192, "storageMB": 8192, "maxDevices": 1},
        },
    )
    assert r.status_code == 201, r.text


async def test_bodies_over_one_mebibyte_are_413_before_they_are_read_whole(
    client: httpx.AsyncClient, user: str
) -> None:
    big = b'{"userId": "' + b"x" * MAX_BODY_BYTES + b'"}'
    r = await client.post(
        "/scheduler/devices/allocate",
        headers={**auth(user), "content-type": "application/json"},
        content=big,
    )
    assert_problem(r, 413, "payload_too_large")

    chunk = 64 * 1024
    total_chunks = 10 * MAX_BODY_BYTES // chunk
    sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"userId": "'
        for _ in range(total_chunks):
            sent += 1
            yield b"x" * chunk

    r = await client.post(
        "/scheduler/devices/allocate",
        headers={**auth(user), "content-type": "application/json"},
        content=stream(),
    )
    assert_problem(r, 413, "payload_too_large")
    assert sent < total_chunks // 2, "the streamed body was read to its end"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/scheduler/admin/tenants"),
        ("POST", "/scheduler/admin/tokens"),
        ("POST", "/scheduler/nodes"),
        ("POST", "/scheduler/strategy"),
    ],
)
async def test_malformed_json_with_an_idempotency_key_is_400(
    client: httpx.AsyncClient, admin_token: str, method: str, path: str
) -> None:
    r = await client.request(
        method,
        path,
        headers={
            **auth(admin_token),
            "content-type": "application/json",
            "Idempotency-Key": f"k-{uuid.uuid4()}",
        },
        content=b"{not json",
    )
    assert_problem(r, 400, "malformed_json")


async def test_a_request_no_device_could_ever_serve_is_refused_at_once_with_the_best_offer(
    client: httpx.AsyncClient, admin_token: str, services: Services, user: str
) -> None:
    pool = await new_pool(client, admin_token, devices=1, cpu=8)
    grant = await client.post("/scheduler/devices/allocate", headers=auth(user), json=in_pool(pool))
    assert grant.status_code == 201  # every device of the pool is now busy
    start = (services.clock() + timedelta(hours=2)).isoformat()
    too_big = {"minCpu": 64, "labels": pool.label}
    for path, body in (
        ("/scheduler/devices/allocate", {"preferredSpecs": too_big}),
        ("/scheduler/devices/allocate", {"preferredSpecs": too_big, "queueIfUnavailable": True}),
        ("/scheduler/queue/join", {"durationMinutes": 30, "preferredSpecs": too_big}),
        (
            "/scheduler/reservations",
            {"startTime": start, "durationMinutes": 30, "preferredSpecs": too_big},
        ),
    ):
        r = await client.post(path, headers=auth(user), json=body)
        assert_problem(r, 422, "unsatisfiable")
        assert r.json()["constraint"] == "cpu"
        assert "≥ 64 cores; the largest has 8 cores" in r.json()["detail"], r.text

    r = await client.post(
        "/scheduler/queue/join",
        headers=auth(user),
        json={"durationMinutes": 30, "preferredSpecs": {"labels": {"gpu": uuid.uuid4().hex}}},
    )
    assert_problem(r, 422, "unsatisfiable")
    assert r.json()["constraint"] == "label_selector"

    r = await client.post(
        "/scheduler/schedule", headers=auth(user), json={"preferredSpecs": too_big}
    )
    assert r.status_code == 200
    (unplaced,) = r.json()["unplaced"]
    assert unplaced["unsatisfiable"] and unplaced["binding"] == "cpu"
    assert "the largest has 8 cores" in unplaced["reason"]
    # a request the fleet could serve, with every matching device busy, is not "unsatisfiable"
    r = await client.post(
        "/scheduler/schedule", headers=auth(user), json={"preferredSpecs": {"labels": pool.label}}
    )
    (unplaced,) = r.json()["unplaced"]
    assert not unplaced["unsatisfiable"]


def _unbounded(schema: dict[str, Any], defs: dict[str, Any], where: str) -> list[str]:
    """Every number without a maximum, string without a length bound, list without a
    length bound or map without a size bound, anywhere in a request schema."""
    if "$ref" in schema:
        return _unbounded(defs[schema["$ref"].rsplit("/", 1)[1]], defs, where)
    found: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            found += _unbounded(option, defs, where)
    kind = schema.get("type")
    if kind in ("integer", "number") and "maximum" not in schema:
        found.append(f"{where}: a number without a maximum")
    if kind == "string" and not (
        "maxLength" in schema or "enum" in schema or schema.get("format") in ("uuid", "date-time")
    ):
        found.append(f"{where}: a string without maxLength")
    if kind == "array":
        if "maxItems" not in schema:
            found.append(f"{where}: a list without maxItems")
        found += _unbounded(schema.get("items", {}), defs, f"{where}[]")
    if kind == "object":
        for name, sub in schema.get("properties", {}).items():
            found += _unbounded(sub, defs, f"{where}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            if "maxProperties" not in schema:
                found.append(f"{where}: a map without maxProperties")
            found += _unbounded(
                schema.get("propertyNames", {"type": "string"}), defs, f"{where}{{key}}"
            )
            found += _unbounded(extra, defs, f"{where}{{}}")
    return found


async def test_every_number_string_list_and_map_a_request_carries_is_bounded(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    defs = spec["components"]["schemas"]
    found: list[str] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "header":
                    found += _unbounded(parameter["schema"], defs, f"{where} ?{parameter['name']}")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                found += _unbounded(body["schema"], defs, f"{where} body")
    assert found == [], "\n".join(found)
