"""PostgreSQL restarted under load (an immediate shutdown: the crash-recovery path): while it
is down a request is a 503 `service_unavailable` with `Retry-After`, never a hang or a 500;
once it is back no request fails, though the pool still holds the connections the restart
broke (they are checked before use); retried keys are granted once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from scheduler.adapters.migrations import upgrade_to_head
from scheduler.bootstrap import build_services
from scheduler.cli.embedded_postgres import start_embedded_postgres
from scheduler.config import Settings
from scheduler.services.tenancy import ensure_admin_token
from tests.builders import Server, auth, free_port, new_pool, new_tenant, new_token, start_server
from tests.e2e.conftest import plain

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIENTS = 6
#: Longer than a request waits for a pooled connection (5 s): one that waits gets a 503.
DOWN_SECONDS = 6.5


@dataclass
class OwnPostgres:
    """A PostgreSQL server of this test's own, which it may take down."""

    data_dir: Path
    port: int
    url: str

    def pid(self) -> int:
        return int((self.data_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0])

    def restart_immediately(self) -> None:
        """``pg_ctl stop -m immediate`` (SIGQUIT: no checkpoint, recovery at the next start),
        then start it again on the same port."""
        pid = self.pid()
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(DOWN_SECONDS)  # clients meanwhile meet a server that is down
        assert start_embedded_postgres(self.data_dir, port=self.port) == self.url


@pytest.fixture
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnPostgres]:
    from scheduler.cli.embedded_servers import stop_embedded_servers

    data_dir = tmp_path_factory.mktemp("pg-restart")
    port = free_port()
    url = start_embedded_postgres(data_dir, port=port)
    upgrade_to_head(url)
    yield OwnPostgres(data_dir, port, url)
    stop_embedded_servers(data_dir)


@pytest.fixture
async def apps_on_own_postgres(
    own_postgres: OwnPostgres, settings: Settings
) -> AsyncIterator[tuple[list[Server], str]]:
    """Two app processes (one under load, one for probes) and an admin token."""
    own = settings.model_copy(update={"database_url": own_postgres.url})
    admin = "pf_restart_" + uuid.uuid4().hex
    services = build_services(own)
    try:
        await ensure_admin_token(services.uow(), admin, now=services.clock())
    finally:
        await services.close()
    servers = [start_server(own, free_port(), []) for _ in range(2)]
    try:
        yield servers, admin
    finally:
        for server in servers:
            server.process.kill()
            server.process.wait()


@dataclass
class Load:
    """What the clients saw: each response's status, by phase, and the leases granted."""

    phase: str = "before"
    statuses: dict[str, Counter[int | str]] = field(default_factory=dict)
    grants: dict[str, str] = field(default_factory=dict)
    stop: bool = False
    go: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0

    def saw(self, status: int | str) -> None:
        self.statuses.setdefault(self.phase, Counter())[status] += 1


async def client_loop(client: httpx.AsyncClient, token: str, body: dict, load: Load) -> None:
    """Allocate and release, over and over; a 5xx or a broken connection is retried with the
    same key, as the platform's console does."""
    while not load.stop:
        key = uuid.uuid4().hex
        grant = await until_answered(client, "/scheduler/devices/allocate", token, key, body, load)
        if grant is None:
            return
        if grant.status_code == 409 and grant.json()["code"] == "no_capacity":
            await asyncio.sleep(0.05)  # the devices are being reset after their last lease
            continue
        assert grant.status_code == 201, grant.text
        lease = grant.json()["allocationId"]
        load.grants[key] = lease
        done = await until_answered(
            client, "/scheduler/devices/release", token, key + "-r", {"allocationId": lease}, load
        )
        assert done is not None and done.status_code == 200, done and done.text


async def until_answered(
    client: httpx.AsyncClient, path: str, token: str, key: str, body: dict, load: Load
) -> httpx.Response | None:
    for _ in range(400):
        await load.go.wait()
        load.in_flight += 1
        try:
            r = await client.post(path, headers={**auth(token), "Idempotency-Key": key}, json=body)
        except httpx.TransportError as error:
            load.saw(type(error).__name__)
            await asyncio.sleep(0.05)
            continue
        finally:
            load.in_flight -= 1
        load.saw(r.status_code)
        if r.status_code < 500:
            return r
        assert r.status_code == 503 and r.json()["code"] == "service_unavailable", r.text
        assert "Retry-After" in r.headers
        await asyncio.sleep(0.05)
    return None


async def test_postgres_restarted_under_load_fails_no_request_once_it_is_back(
    own_postgres: OwnPostgres, apps_on_own_postgres: tuple[list[Server], str]
) -> None:
    (server, prober), admin = apps_on_own_postgres
    load = Load()
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
        httpx.AsyncClient(base_url=prober.url, timeout=30) as probe,
    ):
        pool = await new_pool(client, admin, devices=CLIENTS)
        tenant = await new_tenant(client, admin)
        tokens = [
            await new_token(client, admin, tenant["id"], f"client-{i}") for i in range(CLIENTS)
        ]
        body = {"durationMinutes": 30, "preferredSpecs": {"labels": pool.label}}
        load.go.set()
        clients = asyncio.gather(*(client_loop(client, t, body, load) for t in tokens))
        await asyncio.sleep(2.0)

        load.go.clear()  # the clients pause: their pooled connections stay idle, then break
        while load.in_flight:
            await asyncio.sleep(0.01)
        assert (await probe.get("/readyz")).status_code == 200
        restart = asyncio.create_task(asyncio.to_thread(own_postgres.restart_immediately))
        await asyncio.sleep(0.5)
        load.phase = "outage"  # asked of the other process, not to touch this one's pool
        started = time.monotonic()
        r = await probe.post("/scheduler/devices/allocate", headers=auth(tokens[0]), json=body)
        assert r.status_code == 503 and r.json()["code"] == "service_unavailable", r.text
        assert "Retry-After" in r.headers and time.monotonic() - started < DOWN_SECONDS
        await restart

        load.phase = "after"  # it is back: from now on no request may fail, though the pool
        # still holds the connections of the clients, which the restart closed
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        load.go.set()
        deadline = time.monotonic() + 20
        while (
            load.statuses.get("after", Counter())[201] < 3 * CLIENTS and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.1)
        load.stop = True
        await clients

    before, after = load.statuses["before"], load.statuses["after"]
    answers = {200, 201, 409}  # 409: every device still being reset
    assert set(before) <= answers and set(after) <= answers, load.statuses
    assert after[201] >= 3 * CLIENTS, "the clients went on after the restart"

    with psycopg.connect(plain(own_postgres.url)) as conn:
        leases = conn.execute(
            "SELECT a.id::text, a.status, count(u.id) FROM allocations a"
            " LEFT JOIN usage_records u ON u.allocation_id = a.id"
            " WHERE a.tenant_id = %s GROUP BY a.id",
            (uuid.UUID(tenant["id"]),),
        ).fetchall()
    assert {lease for lease, _, _ in leases} == set(load.grants.values()), (
        "each key granted once, and no lease a client did not hear of"
    )
    assert {(status, records) for _, status, records in leases} == {("released", 1)}

    def devices() -> set[str]:
        with psycopg.connect(plain(own_postgres.url)) as conn:
            return {row[0] for row in conn.execute("SELECT DISTINCT status FROM devices")}

    deadline = time.monotonic() + 10  # a reset lost to the outage is redone by the reconcile
    while devices() != {"available"} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert devices() == {"available"}
