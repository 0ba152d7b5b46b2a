"""One real PhoneFleet for the e2e tests: ``phonefleet up --demo`` exactly as the README says,
against this session's database and Redis, on ports of its own; ``phonefleet down`` after."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from scheduler.config import Settings

E2E_HTTP_PORT = int(os.environ.get("PHONEFLEET_E2E_HTTP_PORT", "8740"))
#: The platform's JWT secret, given to ``phonefleet up`` in its environment only.
PLATFORM_JWT_SECRET = "e2e-platform-" + secrets.token_hex(16)
#: Node actors each serve a shard of nodes: the kill tests check a restarted one takes them back.
NODE_ACTOR_SHARDS = 2


#: Silence after which the fleet takes a node offline (heartbeats every second).
OFFLINE_AFTER_SECONDS = 8


@dataclass
class RunningFleet:
    api_url: str
    admin_token: str
    data_dir: Path
    env: dict[str, str]
    settings: Settings


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def plain(url: str | None) -> str:
    """A SQLAlchemy URL as libpq takes it."""
    assert url
    return url.replace("postgresql+psycopg://", "postgresql://")


def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """``check()``'s first truthy value, polled every 0.1 s for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def empty_database(server_url: str) -> Iterator[str]:
    """A new database on the session's server, dropped after."""
    base = server_url.replace("postgresql+psycopg://", "postgresql://")
    name = f"phonefleet_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield base.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def e2e_database_url(server_urls: tuple[str, str]) -> Iterator[str]:
    """An empty database of its own: ``up`` migrates it, and the nodes the integration tests
    registered elsewhere never become this cluster's node actors."""
    with empty_database(server_urls[0]) as url:
        yield url


def fleet_env(
    settings: Settings, database_url: str, data_dir: Path, admin_token: str, http_port: int
) -> dict[str, str]:
    """The environment of ``phonefleet`` for a fleet of its own: fast resets and heartbeats."""
    env = {
        **os.environ,
        "PHONEFLEET_DATA_DIR": str(data_dir),
        "PHONEFLEET_DATABASE_URL": database_url,
        "PHONEFLEET_REDIS_URL": str(settings.redis_url),
        "PHONEFLEET_EVENTS_STREAM": settings.events_stream,
        "PHONEFLEET_INBOX_STREAM": f"{settings.events_stream}:inbox:{http_port}",
        "PHONEFLEET_ADMIN_TOKEN": admin_token,
        "PHONEFLEET_HTTP_PORT": str(http_port),
        "PHONEFLEET_DEVICE_RESET_SECONDS": "0.2",
        "PHONEFLEET_NODE_RECONCILE_SECONDS": "1",
        "PHONEFLEET_HEARTBEAT_SECONDS": "1",
        "PHONEFLEET_NODE_OFFLINE_AFTER_SECONDS": str(OFFLINE_AFTER_SECONDS),
    }
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture(scope="session")
def fleet(
    settings: Settings, e2e_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningFleet]:
    data_dir = tmp_path_factory.mktemp("fleet")
    token = "pf_e2e_" + secrets.token_urlsafe(16)
    env = fleet_env(settings, e2e_database_url, data_dir, token, E2E_HTTP_PORT)
    env["PHONEFLEET_NODE_ACTOR_SHARDS"] = str(NODE_ACTOR_SHARDS)
    env["PHONEFLEET_JWT_SECRET"] = PLATFORM_JWT_SECRET
    up = run_cli(env, "up", "--demo")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        own = settings.model_copy(
            update={"database_url": e2e_database_url, "node_actor_shards": NODE_ACTOR_SHARDS}
        )
        yield RunningFleet(f"http://127.0.0.1:{E2E_HTTP_PORT}", token, data_dir, env, own)
    finally:
        down = run_cli(env, "down")
        print(down.stdout, down.stderr)


@pytest.fixture
def http(fleet: RunningFleet) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fleet.api_url, timeout=30) as client:
        yield client


@dataclass
class Pool:
    """A node of alike phones under a label of its own, and a tenant with one user token."""

    label: dict[str, str]
    node_id: str
    tenant_id: str
    token: str

    @property
    def specs(self) -> dict[str, dict[str, str]]:
        """``preferredSpecs`` that select this pool's phones."""
        return {"labels": self.label}


def new_token(http: httpx.Client, admin_token: str, tenant_id: str, user_id: str) -> str:
    r = http.post(
        "/scheduler/admin/tokens",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={"tenantId": tenant_id, "userId": user_id, "role": "user"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def seed_pool(http: httpx.Client, admin_token: str, prefix: str, devices: int) -> Pool:
    """Register the pool through the API, as an operator would."""
    admin = {"Authorization": f"Bearer {admin_token}"}
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    node = http.post(
        "/scheduler/nodes",
        headers=admin,
        json={
            "name": name,
            "labels": {"pool": name},
            "capacity": {
                "cpuCores": 64,
                "memoryMB": 10**6,
                "storageMB": 10**8,
                "maxDevices": devices,
            },
        },
    )
    assert node.status_code == 201, node.text
    r = http.post(
        f"/scheduler/nodes/{node.json()['id']}/devices",
        headers=admin,
        json={
            "count": devices,
            "spec": {"cpuCores": 2, "memoryMB": 2048, "storageMB": 8192, "androidVersion": "13"},
        },
    )
    assert r.status_code == 201, r.text
    tenant = http.post(
        "/scheduler/admin/tenants",
        headers=admin,
        json={
            "name": name,
            "quota": {"maxDevices": 100, "cpuCores": 1000, "memoryMB": 10**7, "storageMB": 10**9},
        },
    )
    assert tenant.status_code == 201, tenant.text
    tenant_id = tenant.json()["id"]
    token = new_token(http, admin_token, tenant_id, "owner")
    return Pool({"pool": name}, node.json()["id"], tenant_id, token)
