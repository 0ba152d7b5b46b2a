"""The one command path on real PostgreSQL: a process killed between its commit and its
answer loses nothing and does nothing twice; retries get the first outcome (result or
refusal); failures and transient refusals leave no trace; allocate-or-queue is one command."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta

import httpx
import pytest

from scheduler.bootstrap import CRASH_EXIT_CODE, Services
from scheduler.config import Settings
from scheduler.domain import events
from scheduler.domain.errors import QueueFull
from scheduler.domain.identity import Principal, Role
from scheduler.domain.queueing import QueueLimits
from scheduler.domain.resources import DeviceRequirements
from scheduler.services.command_path import CommandPath, Route, Unit
from scheduler.services.queue import JoinQueue, Queued
from tests.builders import (
    Server,
    auth,
    busy_pool,
    commands_with,
    free_port,
    in_pool,
    new_pool,
    new_tenant,
    new_token,
    run_sql,
    start_server,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def crashing_then_healthy(settings: Settings) -> Iterator[tuple[Server, int]]:
    """An app that dies right after committing an allocate, a queue join or a booking."""
    port = free_port()
    server = start_server(settings, port, ["AllocateDevice", "JoinQueue", "Reserve"])
    yield server, port
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()


async def test_a_process_killed_after_the_commit_answers_the_retry_with_the_first_result(
    client: httpx.AsyncClient,
    admin_token: str,
    services: Services,
    settings: Settings,
    crashing_then_healthy: tuple[Server, int],
) -> None:
    crashing, port = crashing_then_healthy
    pool = await new_pool(client, admin_token, devices=2)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "unlucky")
    start = (services.clock() + timedelta(hours=2)).isoformat()
    requests = [
        ("/scheduler/devices/allocate", in_pool(pool), "allocations"),
        ("/scheduler/queue/join", in_pool(pool), "queue_entries"),
        (
            "/scheduler/reservations",
            {"startTime": start, "durationMinutes": 30, "preferredSpecs": {"labels": pool.label}},
            "reservations",
        ),
    ]
    keys = [f"crash-{uuid.uuid4()}" for _ in requests]

    # The first attempt of each command commits, then its process dies before answering.
    server = crashing
    for (path, body, _), key in zip(requests, keys, strict=True):
        with pytest.raises(httpx.TransportError):
            httpx.post(
                server.url + path,
                headers={**auth(token), "Idempotency-Key": key},
                json=body,
                timeout=10,
            )
        assert server.process.wait(timeout=10) == CRASH_EXIT_CODE
        server = start_server(settings, port, ["AllocateDevice", "JoinQueue", "Reserve"])
    server.process.kill()
    server.process.wait()
    healthy = start_server(settings, port, [])
    try:
        for (path, body, table), key in zip(requests, keys, strict=True):
            r = httpx.post(
                healthy.url + path,
                headers={**auth(token), "Idempotency-Key": key},
                json=body,
                timeout=10,
            )
            assert r.status_code in (201, 202), r.text
            assert r.headers["Idempotent-Replayed"] == "true"
            rows = await run_sql(
                services,
                f"SELECT id FROM {table} WHERE tenant_id = %(t)s",
                {"t": uuid.UUID(tenant["id"])},
            )
            assert len(rows) == 1, (table, rows)
            answered = r.json().get("allocationId") if table == "allocations" else r.json()["id"]
            assert str(rows[0]["id"]) == answered
    finally:
        healthy.process.kill()
        healthy.process.wait()


async def test_a_retried_allocate_or_queue_returns_the_same_entry(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool, _, _ = await busy_pool(client, admin_token)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "patient")
    headers = {**auth(token), "Idempotency-Key": uuid.uuid4().hex}
    body = in_pool(pool, queueIfUnavailable=True)

    first = await client.post("/scheduler/devices/allocate", headers=headers, json=body)
    again = await client.post("/scheduler/devices/allocate", headers=headers, json=body)

    assert first.status_code == again.status_code == 202, first.text
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    rows = await run_sql(
        services,
        "SELECT count(*) AS n FROM queue_entries WHERE tenant_id = %(t)s",
        {"t": uuid.UUID(tenant["id"])},
    )
    assert rows[0]["n"] == 1
    r = await client.post(f"/scheduler/queue/{first.json()['id']}/cancel", headers=auth(token))
    assert r.status_code == 200  # leave no waiter behind for the other tests' queue views


async def test_a_transient_refusal_is_not_kept_so_the_retry_runs(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    tenant = await new_tenant(client, admin_token)
    principal = Principal(uuid.UUID(tenant["id"]), "later", Role.USER)
    full = commands_with(services, replace(services.config, queue_limits=QueueLimits(per_tenant=0)))
    command = JoinQueue(None, 30, DeviceRequirements(labels=pool.label), 30)
    key = uuid.uuid4().hex

    with pytest.raises(QueueFull):
        await full.handle(command, principal, key)
    handled = await services.commands.handle(command, principal, key)

    assert isinstance(handled.result, Queued) and not handled.replayed


@dataclass(frozen=True)
class Flaky:
    """A test command: its handler writes an event, then fails unexpectedly when asked."""

    tag: str
    fail: bool


@pytest.mark.parametrize("acts_outside", [False, True])
async def test_a_command_that_fails_unexpectedly_leaves_no_trace(
    services: Services, acts_outside: bool
) -> None:
    calls: list[str] = []

    async def handler(command: Flaky, unit: Unit) -> str:
        calls.append(command.tag)
        unit.emit(events.StrategyChanged(occurred_at=unit.now, strategy=command.tag))
        if command.fail and len(calls) == 1:
            raise RuntimeError("the replica lost its footing")
        return command.tag

    path = CommandPath(
        services.uow,
        {Flaky: Route(handler, (str,), acts_outside=acts_outside)},
        config=services.config,
        lifecycle=services.lifecycle,
        queue=services.queue,
        clock=services.clock,
    )
    principal = Principal(uuid.uuid4(), "admin", Role.ADMIN)
    tag, key = uuid.uuid4().hex, uuid.uuid4().hex

    with pytest.raises(RuntimeError):
        await path.handle(Flaky(tag, fail=True), principal, key)
    assert await _strategy_events(services, tag) == 0  # rolled back with the key's claim
    first = await path.handle(Flaky(tag, fail=True), principal, key)
    again = await path.handle(Flaky(tag, fail=True), principal, key)

    assert (first.result, first.replayed, again.result, again.replayed) == (tag, False, tag, True)
    # A handler that works in the database only runs on the replay too (its key's claim goes
    # with its first read), rolled back; one that acts outside the database is not run.
    assert calls == [tag, tag] + ([] if acts_outside else [tag])
    assert await _strategy_events(services, tag) == 1


async def _strategy_events(services: Services, tag: str) -> int:
    rows = await run_sql(
        services,
        "SELECT count(*) AS n FROM outbox_events WHERE type = 'scheduler.strategy_changed'"
        " AND payload->>'strategy' = %(tag)s",
        {"tag": tag},
    )
    return int(rows[0]["n"])
