"""The README's flow over HTTP against a real Ray Serve deployment, node actors and the
housekeeper: tokens, a fleet, allocate, release, the reset, expiry and the event stream."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import psycopg
import pytest
import redis

from tests.e2e.conftest import (
    RunningFleet,
    auth,
    eventually,
    new_token,
    plain,
    run_cli,
    seed_pool,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_readme_flow_runs_over_serve(http: httpx.Client, fleet: RunningFleet) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert http.get("/docs").status_code == 200

    admin = auth(fleet.admin_token)
    nodes = http.get("/scheduler/nodes", headers=admin).json()
    assert nodes, "--demo registers a fleet"
    assert http.get("/scheduler/devices/available", headers=admin).json()["total"] > 0

    tenant = http.post(
        "/scheduler/admin/tenants",
        headers=admin,
        json={
            "name": f"e2e-{uuid.uuid4().hex[:8]}",
            "quota": {"maxDevices": 5, "cpuCores": 64, "memoryMB": 262144, "storageMB": 10**7},
        },
    ).json()
    token = http.post(
        "/scheduler/admin/tokens",
        headers=admin,
        json={"tenantId": tenant["id"], "userId": "dana", "role": "user"},
    ).json()["token"]

    r = http.post(
        "/scheduler/devices/allocate",
        headers={**auth(token), "Idempotency-Key": "k1"},
        json={"durationMinutes": 30},
    )
    assert r.status_code == 201, r.text
    grant = r.json()
    again = http.post(
        "/scheduler/devices/allocate",
        headers={**auth(token), "Idempotency-Key": "k1"},
        json={"durationMinutes": 30},
    )
    assert again.json()["allocationId"] == grant["allocationId"]

    r = http.post(
        "/scheduler/devices/release",
        headers=auth(token),
        json={"allocationId": grant["allocationId"]},
    )
    assert r.status_code == 200, r.text

    def device_status() -> str | None:
        with psycopg.connect(plain(fleet.settings.database_url)) as conn:
            row = conn.execute(
                "SELECT status FROM devices WHERE id = %s", (uuid.UUID(grant["deviceId"]),)
            ).fetchone()
        return row[0] if row and row[0] == "available" else None

    eventually(device_status)  # the NodeActor reset it and offered it again

    # the housekeeper expires a due lease by itself and relays the events to Redis
    r = http.post("/scheduler/devices/allocate", headers=auth(token), json={"durationMinutes": 5})
    lease = r.json()
    with psycopg.connect(plain(fleet.settings.database_url)) as conn:
        conn.execute(
            "UPDATE allocations SET allocated_at = allocated_at - interval '1 hour',"
            " expires_at = now() + interval '1 second' WHERE id = %s",
            (uuid.UUID(lease["allocationId"]),),
        )
    eventually(
        lambda: (
            http.get(f"/scheduler/allocations/{lease['allocationId']}", headers=auth(token)).json()[
                "status"
            ]
            == "expired"
        )
    )

    stream = redis.Redis.from_url(str(fleet.settings.redis_url), decode_responses=True)

    def relayed_types() -> set[str]:
        types = {
            f["type"]
            for _, f in stream.xrange(fleet.settings.events_stream)
            if grant["allocationId"] in f["payload"] or lease["allocationId"] in f["payload"]
        }
        wanted = {"allocation.granted", "allocation.released", "allocation.expired"}
        return types if wanted <= types else set()

    eventually(relayed_types)


def test_bad_requests_over_serve_get_problem_json(http: httpx.Client) -> None:
    r = http.post("/scheduler/devices/allocate", json={})
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    r = http.post(
        "/scheduler/devices/allocate",
        headers={**auth("nope"), "content-type": "application/json"},
        content=b"{",
    )
    assert r.status_code == 401


async def test_200_concurrent_allocations_over_serve_grant_exactly_the_20_devices(
    fleet: RunningFleet, http: httpx.Client
) -> None:
    pool = seed_pool(http, fleet.admin_token, "e2e", 20)
    tokens = [new_token(http, fleet.admin_token, pool.tenant_id, f"u{i}") for i in range(50)]
    async with httpx.AsyncClient(base_url=fleet.api_url, timeout=60) as client:
        body = {"durationMinutes": 10, "preferredSpecs": pool.specs}
        responses = await asyncio.gather(
            *(
                client.post("/scheduler/devices/allocate", headers=auth(tokens[i % 50]), json=body)
                for i in range(200)
            )
        )
    codes = Counter(r.status_code for r in responses)
    granted = [r.json()["deviceId"] for r in responses if r.status_code == 201]
    assert codes == Counter({201: 20, 409: 180}), codes
    assert len(set(granted)) == 20


def test_cli_status_and_token_create_work_against_the_running_fleet(
    fleet: RunningFleet, http: httpx.Client
) -> None:
    status = run_cli(fleet.env, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    created = run_cli(fleet.env, "token", "create", "--tenant", "demo", "--user", "cli-user")
    assert created.returncode == 0, created.stdout + created.stderr
    token = created.stdout.strip().splitlines()[-1]
    r = http.get("/scheduler/allocations", headers=auth(token))
    assert r.status_code == 200 and r.json()["total"] == 0
    refused = run_cli(fleet.env, "token", "create", "--tenant", "no-such-tenant", "--user", "x")
    assert refused.returncode == 1


def test_the_queue_over_serve_survives_a_queue_actor_restart_and_grants_on_release(
    fleet: RunningFleet, http: httpx.Client
) -> None:
    import ray

    from actors.names import NAMESPACE, QUEUE
    from actors.ray_client import connect
    from scheduler.cli.ray_head import head_status

    pool = seed_pool(http, fleet.admin_token, "q", 1)
    token = pool.token
    body = {"durationMinutes": 30, "preferredSpecs": pool.specs}
    lease = http.post("/scheduler/devices/allocate", headers=auth(token), json=body).json()
    waiters = [
        http.post("/scheduler/queue/join", headers=auth(token), json=body).json()["id"]
        for _ in range(3)
    ]

    head = head_status(fleet.data_dir)
    assert head is not None
    connect(head.address)
    try:
        actor = ray.get_actor(QUEUE, namespace=NAMESPACE)

        def mine(order: list[str]) -> list[str]:
            return [i for i in order if i in waiters]

        before = eventually(lambda: mine(ray.get(actor.order.remote())) == waiters or None)
        assert before
        ray.kill(actor, no_restart=False)
        after = eventually(
            lambda: (
                mine(ray.get(ray.get_actor(QUEUE, namespace=NAMESPACE).order.remote())) == waiters
                or None
            ),
            timeout=60,
        )
        assert after
    finally:
        ray.shutdown()

    http.post(
        "/scheduler/devices/release",
        headers=auth(token),
        json={"allocationId": lease["allocationId"]},
    )
    first = eventually(
        lambda: (
            http.get(f"/scheduler/queue/{waiters[0]}", headers=auth(token)).json()["status"]
            == "fulfilled"
        )
    )
    assert first
    assert (
        http.get(f"/scheduler/queue/{waiters[1]}", headers=auth(token)).json()["status"]
        == "waiting"
    )


def test_bookings_extensions_and_batches_over_serve(
    fleet: RunningFleet, http: httpx.Client
) -> None:
    from datetime import UTC, datetime, timedelta

    pool = seed_pool(http, fleet.admin_token, "b", 3)
    token, specs = pool.token, pool.specs

    start = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    booking = http.post(
        "/scheduler/reservations",
        headers=auth(token),
        json={"startTime": start, "durationMinutes": 60, "preferredSpecs": specs},
    )
    assert booking.status_code == 201, booking.text
    r = http.post(f"/scheduler/reservations/{booking.json()['id']}/cancel", headers=auth(token))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"

    batch = http.post(
        "/scheduler/allocations/batch",
        headers=auth(token),
        json={"requests": [{"durationMinutes": 30, "preferredSpecs": specs}] * 4, "atomic": True},
    )
    assert batch.status_code == 409 and batch.json()["code"] == "batch_not_placeable"
    batch = http.post(
        "/scheduler/allocations/batch",
        headers=auth(token),
        json={"requests": [{"durationMinutes": 30, "preferredSpecs": specs}] * 3},
    )
    assert batch.status_code == 200 and batch.json()["granted"] == 3, batch.text
    ids = [item["allocation"]["allocationId"] for item in batch.json()["results"]]
    r = http.put(
        f"/scheduler/allocations/{ids[0]}/extend",
        headers=auth(token),
        json={"additionalMinutes": 15},
    )
    assert r.status_code == 200 and r.json()["durationMinutes"] == 45
    r = http.post(
        "/scheduler/allocations/batch/release", headers=auth(token), json={"allocationIds": ids}
    )
    assert r.status_code == 200, r.text
