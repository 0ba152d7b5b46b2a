"""``phonefleet up --demo``: a small simulated fleet, registered through the public API
exactly as an operator would, plus a demo tenant and user token to try it with."""

from __future__ import annotations

from typing import Any

import httpx

DEMO_TENANT = "demo"
DEMO_USER = "demo-user"
DEMO_NODES: tuple[dict[str, Any], ...] = (
    {
        "name": "demo-eu-1",
        "labels": {"region": "eu", "zone": "eu-1a"},
        "capacity": {"cpuCores": 64, "memoryMB": 262144, "storageMB": 4194304, "maxDevices": 16},
        "devices": [
            {
                "count": 6,
                "spec": {
                    "cpuCores": 2,
                    "memoryMB": 4096,
                    "storageMB": 32768,
                    "androidVersion": "13",
                },
            },
            {
                "count": 4,
                "spec": {
                    "cpuCores": 4,
                    "memoryMB": 8192,
                    "storageMB": 65536,
                    "androidVersion": "14",
                },
                "labels": {"gpu": "true"},
            },
        ],
    },
    {
        "name": "demo-us-1",
        "labels": {"region": "us", "zone": "us-1a"},
        "capacity": {"cpuCores": 64, "memoryMB": 262144, "storageMB": 4194304, "maxDevices": 16},
        "devices": [
            {
                "count": 8,
                "spec": {
                    "cpuCores": 2,
                    "memoryMB": 4096,
                    "storageMB": 32768,
                    "androidVersion": "13",
                },
            },
        ],
    },
)
DEMO_QUOTA = {"maxDevices": 10, "cpuCores": 40, "memoryMB": 81920, "storageMB": 655360}


def seed_demo_fleet(api_url: str, admin_token: str) -> tuple[str, str]:
    """Register the demo nodes, devices and tenant (skipping what exists); return a fresh
    token for the demo user and a one-line summary."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=60) as client:
        existing = {n["name"] for n in _ok(client.get("/scheduler/nodes"))}
        added = 0
        for spec in DEMO_NODES:
            if spec["name"] in existing:
                continue
            body = {k: v for k, v in spec.items() if k != "devices"}
            node = _ok(client.post("/scheduler/nodes", json=body))
            for batch in spec["devices"]:
                added += len(_ok(client.post(f"/scheduler/nodes/{node['id']}/devices", json=batch)))
        tenants = {t["name"]: t for t in _ok(client.get("/scheduler/admin/tenants"))}
        tenant = tenants.get(DEMO_TENANT) or _ok(
            client.post("/scheduler/admin/tenants", json={"name": DEMO_TENANT, "quota": DEMO_QUOTA})
        )
        token = _ok(
            client.post(
                "/scheduler/admin/tokens",
                json={
                    "tenantId": tenant["id"],
                    "userId": DEMO_USER,
                    "role": "user",
                },
            )
        )["token"]
    return str(token), f"{len(DEMO_NODES)} nodes, {added} new devices, tenant '{DEMO_TENANT}'"


def _ok(response: httpx.Response) -> Any:
    if response.is_error:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text}"
        )
    return response.json()
