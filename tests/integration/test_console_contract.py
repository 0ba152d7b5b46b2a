"""The platform's admin console against PhoneFleet (issue 12 §2): its 19 calls, with its
queries and bodies and a platform JWT, answered under ``/cloudphone`` in the original's
envelope and validated against the console's schemas — directly, and through a gateway that
rewrites as the platform's does. Errors keep their status with ``{success: false, statusCode,
message, errorCode}``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from scheduler.config import Settings
from tests import console_schemas as schema
from tests.builders import app_client, auth, in_pool, new_pool, new_tenant, new_token, unique
from tests.console_gateway import gateway
from tests.integration.test_platform_identity import QUOTA, SECRET, platform_jwt

pytestmark = pytest.mark.integration


@dataclass
class ConsoleClient:
    """The console's calls, unwrapped as it unwraps them."""

    http: httpx.AsyncClient
    prefix: str
    token: str
    via_gateway: bool

    async def send(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        sent = {**auth(self.token), "x-request-id": unique("req"), **(headers or {})}
        return await self.http.request(method, self.prefix + path, headers=sent, **kwargs)

    async def call(self, method: str, path: str, model: type[BaseModel] | None, **kw: Any) -> Any:
        """``data`` of a success, validated against the console's ``model``."""
        r = await self.send(method, path, **kw)
        assert r.status_code < 300, r.text
        if self.via_gateway:
            assert r.status_code == 200  # the gateway answers every success with 200
        envelope = schema.Envelope.model_validate(r.json())
        assert envelope.path.startswith("/cloudphone" + path.split("?")[0])
        if model is not None:
            model.model_validate(envelope.data)
        return envelope.data

    async def refused(self, method: str, path: str, status: int, **kw: Any) -> str:
        """The message of an error of ``status``, as the console shows it."""
        r = await self.send(method, path, **kw)
        assert r.status_code == status, r.text
        body = r.json()
        if self.via_gateway:
            assert body["statusCode"] == status and body["service"] == "scheduler-service"
            return str(body["message"])
        error = schema.ErrorEnvelope.model_validate(body)
        assert error.statusCode == status
        return f"{error.errorCode}: {error.message}"


@pytest.fixture
async def platform_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings.model_copy(update={"jwt_secret": SECRET, "jwt_default_quota": QUOTA})
    async for client in app_client(configured):
        yield client


def admin_jwt() -> str:
    return platform_jwt(sub="console-admin", tenantId=unique("acme"), roles=["admin"])


@pytest.fixture(params=["direct", "gateway"])
async def console(
    request: pytest.FixtureRequest, platform_app: httpx.AsyncClient
) -> AsyncIterator[ConsoleClient]:
    token = admin_jwt()
    if request.param == "direct":
        yield ConsoleClient(platform_app, "/cloudphone", token, via_gateway=False)
        return
    app = gateway(platform_app, "http://pf/cloudphone")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield ConsoleClient(http, "", token, via_gateway=True)


def node_body(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "host": f"{name}.hosts.example",
        "port": 2375,
        "region": "eu-west",
        "zone": "eu-west-1a",
        "capacity": {"cpu": 64, "memory": 262_144, "storage": 2_048_000, "maxDevices": 40},
    }


async def test_the_console_s_node_calls(console: ConsoleClient) -> None:
    created = await console.call(
        "POST", "/scheduler/nodes", schema.Node, json=node_body(unique("host"))
    )  # 6
    assert (created["status"], created["port"], created["region"]) == ("active", 2375, "eu-west")
    assert created["capacity"] == {
        "cpu": 64,
        "memory": 262_144,
        "storage": 2_048_000,
        "maxDevices": 40,
    }
    node = f"/scheduler/nodes/{created['id']}"

    listed = await console.call(
        "GET", "/scheduler/nodes?page=1&pageSize=100", schema.ListPage[schema.Node]
    )  # 1
    assert created["id"] in {n["id"] for n in listed["items"]} or listed["total"] > 100
    assert (listed["page"], listed["pageSize"]) == (1, 100)
    assert (await console.call("GET", node, schema.Node))["name"] == created["name"]  # 12

    renamed = unique("renamed")
    assert (await console.call("PUT", node, schema.Node, json={"name": renamed}))[
        "name"
    ] == renamed  # 7
    maintained = await console.call(
        "POST", f"{node}/maintenance", schema.Node, json={"enable": True}
    )  # 9
    assert maintained["status"] == "maintenance"
    resumed = await console.call("POST", f"{node}/maintenance", schema.Node, json={"enable": False})
    assert resumed["status"] == "active"
    assert (await console.call("POST", f"{node}/drain", schema.Node, json={}))["status"] in (
        "draining",
        "inactive",  # drained at once: no leases
    )  # 10

    gone = await console.call(
        "POST", "/scheduler/nodes", schema.Node, json=node_body(unique("host"))
    )
    await console.call("DELETE", f"/scheduler/nodes/{gone['id']}", schema.Node)  # 8
    await console.refused("GET", f"/scheduler/nodes/{gone['id']}", 404)


async def test_the_console_s_strategy_calls(console: ConsoleClient) -> None:
    listed = await console.call(
        "GET", "/scheduler/strategies", schema.ListPage[schema.Strategy]
    )  # 3
    active_before = await console.call(
        "GET", "/scheduler/strategies/active", schema.ActiveStrategy
    )  # 4
    assert active_before["id"] in {s["id"] for s in listed["items"] if s["isActive"]}

    body = {"name": unique("packed"), "type": "binpack", "description": "fill hosts first"}
    created = await console.call("POST", "/scheduler/strategies", schema.Strategy, json=body)  # 13
    assert (created["type"], created["isActive"]) == ("binpack", False)
    path = f"/scheduler/strategies/{created['id']}"
    updated = await console.call(
        "PUT", path, schema.Strategy, json={"description": "tighter"}
    )  # 14
    assert (updated["name"], updated["description"]) == (body["name"], "tighter")

    await console.call("POST", f"{path}/activate", schema.Strategy)  # 11
    active = await console.call("GET", "/scheduler/strategies/active", schema.ActiveStrategy)
    assert active["id"] == created["id"]
    assert "strategy_active" in await console.refused("DELETE", path, 409) or console.via_gateway

    await console.call(
        "POST", f"/scheduler/strategies/{active_before['id']}/activate", schema.Strategy
    )
    await console.call("DELETE", path, schema.Strategy)  # 15
    await console.refused("GET", path.replace("/strategies/", "/strategies/") + "/activate", 405)


async def test_the_console_s_cluster_and_task_calls(
    console: ConsoleClient, client: httpx.AsyncClient, admin_token: str
) -> None:
    await console.call("POST", "/scheduler/nodes", schema.Node, json=node_body(unique("room")))
    pool = await new_pool(client, admin_token, devices=2)
    tenant = await new_tenant(client, admin_token)
    user = await new_token(client, admin_token, tenant["id"], "alice")
    lease = await client.post("/scheduler/devices/allocate", headers=auth(user), json=in_pool(pool))
    assert lease.status_code == 201, lease.text
    device = lease.json()["deviceId"]

    stats = await console.call(
        "GET", "/scheduler/resources/cluster-stats", schema.ClusterStats
    )  # 2
    assert stats["usage"]["devices"] >= 1 and 0 < stats["utilization"]["cpu"] <= 100

    placed = await console.call(
        "POST", "/scheduler/schedule", schema.Placement, json={"deviceId": device}
    )  # 16
    assert 0 <= placed["score"] <= 1000 and placed["reason"]

    moved = await console.call("POST", f"/scheduler/reschedule/{device}", schema.Rescheduled)  # 17
    assert moved["allocationId"] == lease.json()["allocationId"] and moved["movedTo"] != device

    full = await new_pool(client, admin_token, devices=1)
    taken = await client.post("/scheduler/devices/allocate", headers=auth(user), json=in_pool(full))
    waiting = await client.post(
        "/scheduler/devices/allocate",
        headers=auth(user),
        json=in_pool(full, queueIfUnavailable=True),
    )
    assert taken.status_code == 201 and waiting.status_code == 202, waiting.text
    tasks = await console.call(
        "GET", "/scheduler/tasks?page=1&pageSize=20", schema.ListPage[schema.Task]
    )  # 5
    by_id = {t["id"]: t for t in tasks["items"]}
    assert by_id[lease.json()["allocationId"]]["status"] == "running"
    assert by_id[lease.json()["allocationId"]]["deviceId"] == moved["movedTo"]
    assert by_id[lease.json()["allocationId"]]["nodeId"] == pool.node["id"]
    pending = by_id[waiting.json()["id"]]
    assert (pending["status"], pending["deviceId"], pending["nodeId"]) == ("pending", "", "")
    assert "startedAt" not in pending

    end = datetime.now(UTC)
    window = f"startDate={(end - timedelta(hours=6)).isoformat()}&endDate={end.isoformat()}"
    trend = await console.call(
        "GET",
        f"/scheduler/nodes/{pool.node['id']}/usage-trend?{window}".replace("+", "%2B"),
        schema.UsageTrend,
    )  # 18
    assert trend["hours"] == 6 and len(trend["points"]) == 6
    assert trend["points"][-1]["leases"] >= 1
    cluster = await console.call("GET", "/scheduler/cluster/usage-trend", schema.UsageTrend)  # 19
    assert cluster["hours"] == 24


async def test_refusals_keep_their_status_and_say_why(console: ConsoleClient) -> None:
    no_host = await console.refused("POST", "/scheduler/nodes", 422, json={"name": "x"})
    assert "host: Field required" in no_host
    missing = "/scheduler/nodes/00000000-0000-0000-0000-000000000000"
    assert "No such node" in await console.refused("GET", missing, 404)
    assert await console.refused("POST", "/scheduler/schedule", 422, json={"nodeId": None})
    bad = ConsoleClient(
        console.http, console.prefix, platform_jwt(iss="elsewhere"), console.via_gateway
    )
    assert await bad.refused("GET", "/scheduler/nodes", 401)


async def test_a_status_set_from_the_console_runs_the_native_command(
    console: ConsoleClient,
) -> None:
    node = await console.call("POST", "/scheduler/nodes", schema.Node, json=node_body(unique("h")))
    path = f"/scheduler/nodes/{node['id']}"
    for wanted in ("maintenance", "active", "inactive", "active", "draining"):
        changed = await console.call("PUT", path, schema.Node, json={"status": wanted})
        assert changed["status"] in (wanted, "inactive" if wanted == "draining" else wanted)
    message = await console.refused("PUT", path, 409, json={"status": "maintenance"})
    assert "cannot change its maintenance" in message
    assert "status" in await console.refused("PUT", path, 422, json={"status": "removed"})


async def test_a_console_command_retried_with_its_key_is_applied_once(
    platform_app: httpx.AsyncClient,
) -> None:
    console = ConsoleClient(platform_app, "/cloudphone", admin_jwt(), via_gateway=False)
    body = node_body(unique("h"))
    key = {"Idempotency-Key": unique("key")}
    first = await console.call("POST", "/scheduler/nodes", schema.Node, json=body, headers=key)
    again = await console.call("POST", "/scheduler/nodes", schema.Node, json=body, headers=key)
    assert again["id"] == first["id"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/scheduler/nodes/not-a-uuid", None, 422),
        ("GET", "/scheduler/nodes?page=0", None, 422),
        ("GET", "/scheduler/tasks?pageSize=5000", None, 422),
        ("GET", "/scheduler/tasks?status=lost", None, 422),
        ("GET", "/scheduler/cluster/usage-trend?startDate=yesterday", None, 422),
        ("GET", "/scheduler/cluster/usage-trend?startDate=2020-01-01T00:00:00Z", None, 422),
        ("POST", "/scheduler/strategies", {"name": "x", "type": "fifo"}, 422),
        ("POST", "/scheduler/strategies", {"name": "x", "type": "spread", "config": {"w": 1}}, 422),
        ("POST", "/scheduler/schedule", {"cpuCores": 2}, 422),
        ("POST", "/scheduler/schedule", {"deviceId": "00000000-0000-0000-0000-000000000001"}, 404),
        ("POST", "/scheduler/nodes", [], 400),
        ("POST", "/scheduler/reschedule/00000000-0000-0000-0000-000000000001", None, 404),
        ("GET", "/scheduler/nowhere", None, 404),
    ],
)
async def test_bad_input_is_a_clear_refusal_in_the_console_s_shape(
    console: ConsoleClient, method: str, path: str, body: Any, status: int
) -> None:
    assert await console.refused(method, path, status, json=body)
