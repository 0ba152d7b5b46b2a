"""What the small benchmarks share: a scratch database, and a pool with a tenant to use it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import psycopg

from scheduler.adapters.migrations import upgrade_to_head

BASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def scratch_database(prefix: str) -> Iterator[tuple[str, str]]:
    """A database migrated from empty on the local server, dropped afterwards: its URL and
    name."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = BASE_URL.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade_to_head(url)
        yield url, name
    finally:
        with psycopg.connect(BASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@dataclass(frozen=True)
class Pool:
    node_id: str
    label: dict[str, str]
    token: str

    def body(self, **extra: object) -> dict[str, object]:
        """An allocate body for this pool's devices."""
        return {"durationMinutes": 30, "preferredSpecs": {"labels": self.label}, **extra}


async def seed_pool(client: httpx.AsyncClient, admin: str, devices: int) -> Pool:
    """A node of ``devices`` alike phones under a label of its own, and a tenant with a quota
    far above use and one user token, through the API."""
    label = {"pool": f"bench-{uuid.uuid4().hex[:6]}"}
    node = await client.post(
        "/scheduler/nodes",
        headers=auth(admin),
        json={
            "name": label["pool"],
            "labels": label,
            "capacity": {
                "cpuCores": 1024,
                "memoryMB": 16_000_000,
                "storageMB": 10**9,
                "maxDevices": devices,
            },
        },
    )
    assert node.status_code == 201, node.text
    r = await client.post(
        f"/scheduler/nodes/{node.json()['id']}/devices",
        headers=auth(admin),
        json={
            "count": devices,
            "spec": {"cpuCores": 2, "memoryMB": 2048, "storageMB": 8192, "androidVersion": "13"},
        },
    )
    assert r.status_code == 201, r.text
    tenant = await client.post(
        "/scheduler/admin/tenants",
        headers=auth(admin),
        json={
            "name": label["pool"],
            "quota": {
                "maxDevices": 10**6,
                "cpuCores": 10**6,
                "memoryMB": 10**12,
                "storageMB": 10**12,
            },
        },
    )
    assert tenant.status_code == 201, tenant.text
    token = await client.post(
        "/scheduler/admin/tokens",
        headers=auth(admin),
        json={"tenantId": tenant.json()["id"], "userId": "bench", "role": "user"},
    )
    return Pool(node.json()["id"], label, token.json()["token"])
