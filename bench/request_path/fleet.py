"""The fleet a run allocates from, created through the real HTTP API (in-process, over ASGI).

Two separate pools, so the PostgreSQL floor never disturbs the service's devices:

* the service pool: a node with ``devices`` devices, a tenant (or several) with a quota far
  above what a run uses, and one user token per concurrent client;
* the floor pool: a node with a taint (requests without a toleration never see its devices)
  and its own tenant, which the raw-SQL floor claims from by node id.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from scheduler.bootstrap import build_services
from scheduler.config import Settings
from scheduler.services.tenancy import ensure_admin_token
from serve.app import create_app

DEVICE_SPEC = {"cpuCores": 1, "memoryMB": 4096, "storageMB": 32768, "androidVersion": "13"}
BIG_QUOTA = {"maxDevices": 1_000_000, "cpuCores": 1e9, "memoryMB": 10**13, "storageMB": 10**15}
FLOOR_TAINT = {"key": "phonefleet.bench/floor", "value": "raw-sql", "effect": "NoSchedule"}
MAX_DEVICES_PER_CALL = 1000
#: A node holds at most 1,024 cores; with one-core devices that is this many devices.
MAX_POOL_DEVICES = 1000


@dataclass(frozen=True)
class Pool:
    """A node's devices and the (first) tenant that allocates them."""

    node_id: uuid.UUID
    tenant_id: uuid.UUID
    devices: int


@dataclass(frozen=True)
class Fleet:
    """What the measurements need: the service pool with its user tokens, the floor pool."""

    admin_token: str
    user_tokens: tuple[str, ...]
    service: Pool
    floor: Pool


class _Api:
    """The admin side of the HTTP API, refusing to go on after any unexpected answer."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        response = await self._client.post(path, json=body)
        if response.status_code != 201:
            raise RuntimeError(f"POST {path}: HTTP {response.status_code} {response.text}")
        return response.json()

    async def node(self, name: str, devices: int, taints: list[dict[str, str]]) -> uuid.UUID:
        """A node holding ``devices`` provisioned devices."""
        node = await self.post(
            "/scheduler/nodes",
            {
                "name": name,
                "labels": {"pool": name},
                "taints": taints,
                "capacity": {
                    "cpuCores": 1024,
                    "memoryMB": 16_000_000,
                    "storageMB": 1_000_000_000,
                    "maxDevices": devices,
                },
            },
        )
        for start in range(0, devices, MAX_DEVICES_PER_CALL):
            count = min(MAX_DEVICES_PER_CALL, devices - start)
            created = await self.post(
                f"/scheduler/nodes/{node['id']}/devices", {"count": count, "spec": DEVICE_SPEC}
            )
            if any(device["status"] != "available" for device in created):
                raise RuntimeError(f"devices of {name} were not provisioned")
        return uuid.UUID(node["id"])

    async def tenant(self, name: str) -> uuid.UUID:
        tenant = await self.post("/scheduler/admin/tenants", {"name": name, "quota": BIG_QUOTA})
        return uuid.UUID(tenant["id"])

    async def token(self, tenant_id: uuid.UUID, user_id: str) -> str:
        body = {"tenantId": str(tenant_id), "userId": user_id, "role": "user"}
        return str((await self.post("/scheduler/admin/tokens", body))["token"])


async def seed_fleet(
    settings: Settings, devices: int, users: int, floor_devices: int, tenants: int = 1
) -> Fleet:
    """Register the admin token, then build both pools and the user tokens over the API.

    The users are spread round-robin over ``tenants`` tenants of the service pool.
    """
    services = build_services(settings)
    admin_token = "pf_bench_admin_" + secrets.token_hex(16)
    try:
        await ensure_admin_token(services.uow(), admin_token, now=services.clock())
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://phonefleet",
            headers={"Authorization": f"Bearer {admin_token}"},
        ) as client:
            api = _Api(client)
            node = await api.node("bench", devices, taints=[])
            tenant_ids = [await api.tenant(f"bench-{i}") for i in range(tenants)]
            tokens = [
                await api.token(tenant_ids[i % tenants], f"bench-user-{i}") for i in range(users)
            ]
            floor_node = await api.node("bench-floor", floor_devices, taints=[FLOOR_TAINT])
            floor = Pool(floor_node, await api.tenant("bench-floor"), floor_devices)
    finally:
        await services.close()
    return Fleet(admin_token, tuple(tokens), Pool(node, tenant_ids[0], devices), floor)
