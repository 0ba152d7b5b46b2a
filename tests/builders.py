"""Builders that make tenants, tokens and fleets through the real HTTP API, with unique
names and a unique pool label, so tests never depend on each other's rows."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from scheduler.bootstrap import build_services
from scheduler.config import Settings
from scheduler.services.command_path import CommandConfig, CommandPath, run_unit
from scheduler.services.commands import Release
from scheduler.services.handlers import ROUTES
from scheduler.services.leases import end_due_allocations
from serve.app import create_app


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def new_tenant(
    client: httpx.AsyncClient,
    admin: str,
    *,
    max_devices: int = 100,
    cpu: float = 1000,
    memory_mb: int = 10_000_000,
    storage_mb: int = 100_000_000,
) -> dict[str, Any]:
    r = await client.post(
        "/scheduler/admin/tenants",
        headers=auth(admin),
        json={
            "name": unique("tenant"),
            "quota": {
                "maxDevices": max_devices,
                "cpuCores": cpu,
                "memoryMB": memory_mb,
                "storageMB": storage_mb,
            },
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def new_token(
    client: httpx.AsyncClient, admin: str, tenant_id: str, user_id: str, role: str = "user"
) -> str:
    r = await client.post(
        "/scheduler/admin/tokens",
        headers=auth(admin),
        json={"tenantId": tenant_id, "userId": user_id, "role": role},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app over services of its own, built from ``settings``, over ASGI (closed after)."""
    services = build_services(settings)
    transport = httpx.ASGITransport(app=create_app(services))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://pf") as client:
            yield client
    finally:
        await services.close()


@dataclass
class Pool:
    """A node of devices carrying a label no other test uses."""

    node: dict[str, Any]
    devices: list[dict[str, Any]]
    label: dict[str, str]


async def new_pool(
    client: httpx.AsyncClient,
    admin: str,
    *,
    devices: int = 3,
    cpu: float = 2,
    memory_mb: int = 4096,
    storage_mb: int = 32768,
    android: str = "13",
    max_devices: int | None = None,
) -> Pool:
    label = {"pool": unique("pool")}
    r = await client.post(
        "/scheduler/nodes",
        headers=auth(admin),
        json={
            "name": unique("node"),
            "labels": label,
            "capacity": {
                "cpuCores": 1024,
                "memoryMB": 16_000_000,
                "storageMB": 1_000_000_000,
                "maxDevices": max_devices or max(devices, 1),
            },
        },
    )
    assert r.status_code == 201, r.text
    node = r.json()
    created: list[dict[str, Any]] = []
    if devices:
        r = await client.post(
            f"/scheduler/nodes/{node['id']}/devices",
            headers=auth(admin),
            json={
                "count": devices,
                "spec": {
                    "cpuCores": cpu,
                    "memoryMB": memory_mb,
                    "storageMB": storage_mb,
                    "androidVersion": android,
                },
            },
        )
        assert r.status_code == 201, r.text
        created = r.json()
    return Pool(node, created, label)


async def leases_of(client: httpx.AsyncClient, admin: str, user: str, count: int) -> list[str]:
    """``count`` leases held by ``user`` (a tenant and a pool of their own); their ids."""
    pool = await new_pool(client, admin, devices=count)
    tenant = await new_tenant(client, admin)
    token = await new_token(client, admin, tenant["id"], user)
    ids = []
    for _ in range(count):
        r = await client.post(
            "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
        )
        assert r.status_code == 201, r.text
        ids.append(str(r.json()["allocationId"]))
    return ids


def in_pool(pool: Pool, **body: Any) -> dict[str, Any]:
    """An allocate body restricted to ``pool``'s devices."""
    specs = dict(body.pop("preferredSpecs", {}))
    specs["labels"] = {**specs.get("labels", {}), **pool.label}
    return {"durationMinutes": 30, **body, "preferredSpecs": specs}


async def settle(services: Any) -> None:
    """Let the in-process resets and the drains they wake finish."""
    for _ in range(3):
        await services.lifecycle.drain()
        await services.queue.idle()


def commands_with(services: Any, config: CommandConfig) -> CommandPath:
    """The services' command path with other rules' settings (a capped queue, say)."""
    return CommandPath(
        services.uow,
        ROUTES,
        config=config,
        lifecycle=services.lifecycle,
        queue=services.queue,
        clock=services.clock,
    )


async def expire_due(services: Any, *, now: datetime) -> list[Release]:
    """Run the expiry job's work now (as the housekeeper does, without its ledger tick)."""
    return await run_unit(
        services.uow,
        end_due_allocations,
        now=now,
        lifecycle=services.lifecycle,
        queue=services.queue,
    )


async def busy_pool(client: httpx.AsyncClient, admin: str) -> tuple[Pool, str, dict[str, Any]]:
    """A one-device pool whose device is leased, and that lease's holder token."""
    pool = await new_pool(client, admin, devices=1)
    holder = await new_token(client, admin, (await new_tenant(client, admin))["id"], "holder")
    lease = await client.post(
        "/scheduler/devices/allocate", headers=auth(holder), json=in_pool(pool)
    )
    assert lease.status_code == 201
    return pool, holder, lease.json()


async def run_sql(services: Any, query: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Run one statement on the test database outside the API (to set up or inspect rows)."""
    async with services.database.connection() as conn:
        cursor = await conn.execute(query, params)
        rows = await cursor.fetchall() if cursor.description else []
        await conn.commit()
        return list(rows)


async def outbox_payloads(services: Any, kind: str, aggregate_id: str) -> list[Any]:
    """The payloads of the outbox events of type ``kind`` about ``aggregate_id``, in order."""
    rows = await run_sql(
        services,
        "SELECT payload FROM outbox_events WHERE type = %(t)s AND aggregate_id = %(a)s"
        " ORDER BY seq",
        {"t": kind, "a": str(aggregate_id)},
    )
    return [r["payload"] for r in rows]


async def force_due(services: Any, allocation_ids: list[Any]) -> None:
    """Make leases due now, as if their time had run out (started an hour earlier)."""
    await run_sql(
        services,
        "UPDATE allocations SET allocated_at = allocated_at - interval '1 hour',"
        " expires_at = now() - interval '1 second' WHERE id = ANY(%(ids)s::uuid[])",
        {"ids": [str(i) for i in allocation_ids]},
    )


async def new_spread_pool(
    client: httpx.AsyncClient, admin: str, *, nodes: int = 2, devices_per_node: int = 2
) -> list[Pool]:
    """``nodes`` nodes of ``devices_per_node`` devices each, all under one pool label (so
    one request body matches every one of them)."""
    label = {"pool": unique("pool")}
    pools = []
    for _ in range(nodes):
        r = await client.post(
            "/scheduler/nodes",
            headers=auth(admin),
            json={
                "name": unique("node"),
                "labels": label,
                "capacity": {
                    "cpuCores": 1024,
                    "memoryMB": 16_000_000,
                    "storageMB": 1_000_000_000,
                    "maxDevices": devices_per_node,
                },
            },
        )
        assert r.status_code == 201, r.text
        node = r.json()
        r = await client.post(
            f"/scheduler/nodes/{node['id']}/devices",
            headers=auth(admin),
            json={
                "count": devices_per_node,
                "spec": {
                    "cpuCores": 2,
                    "memoryMB": 4096,
                    "storageMB": 32768,
                    "androidVersion": "13",
                },
            },
        )
        assert r.status_code == 201, r.text
        pools.append(Pool(node, r.json(), label))
    return pools


# ---- the app in a process of its own (crash tests, fuzzing) ------------------------------

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """The HTTP app (uvicorn, no Ray) in a process of its own."""

    process: subprocess.Popen[bytes]
    url: str


def start_server(settings: Settings, port: int, crash_after: list[str]) -> Server:
    env = {
        **os.environ,
        "PHONEFLEET_DATABASE_URL": str(settings.database_url),
        "PHONEFLEET_REDIS_URL": str(settings.redis_url),
        "PHONEFLEET_EVENTS_STREAM": settings.events_stream,
        "PHONEFLEET_DEVICE_RESET_SECONDS": "0.05",
        "PHONEFLEET_NODE_RECONCILE_SECONDS": "0.5",
        "PHONEFLEET_FAULT_EXIT_AFTER_COMMIT": json.dumps(crash_after),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "serve.standalone:create_standalone_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Server(process, url)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the app did not start")
