"""Rebalance on real PostgreSQL: a dry run plans and moves nothing; an executed plan is a job
the housekeeper runs move by move (the lease keeps its id, its old device is reset, events
for each); a move whose target was taken or whose lease ended meanwhile is skipped and
recorded; a move raced by a release ends one way only; one rebalance at a time."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.config import Settings
from scheduler.domain.jobs import Job, JobStatus
from scheduler.jobs import rebalance as rebalance_job
from scheduler.services.housekeeping import run_rebalances
from scheduler.services.rebalancing import REBALANCE_JOB
from tests.builders import (
    Pool,
    auth,
    in_pool,
    new_spread_pool,
    new_tenant,
    new_token,
    outbox_payloads,
    run_sql,
    settle,
    unique,
)

pytestmark = pytest.mark.integration


async def _crowded(
    client: httpx.AsyncClient, admin: str, *, leases: int = 3, devices_per_node: int = 3
) -> tuple[list[Pool], list[dict[str, Any]], str]:
    """Two nodes of one pool, every lease on the first (the second cordoned meanwhile)."""
    first, second = await new_spread_pool(client, admin, nodes=2, devices_per_node=devices_per_node)
    await client.post(f"/scheduler/nodes/{second.node['id']}/cordon", headers=auth(admin))
    tenant = await new_tenant(client, admin)
    token = await new_token(client, admin, tenant["id"], "rebalance-test")
    grants = []
    for _ in range(leases):
        r = await client.post(
            "/scheduler/devices/allocate", headers=auth(token), json=in_pool(first)
        )
        assert r.status_code == 201, r.text
        grants.append(r.json())
    await client.post(f"/scheduler/nodes/{second.node['id']}/uncordon", headers=auth(admin))
    return [first, second], grants, token


def _body(pool: Pool, **extra: Any) -> dict[str, Any]:
    return {"strategy": "spread", "maxMoves": 5, "labels": pool.label, **extra}


async def _run_jobs(services: Services) -> None:
    while (
        await run_rebalances(
            services.uow, services.lifecycle, services.queue, now=services.clock(), budget_seconds=5
        )
    )[1]:
        pass  # a pass that ran out of time leaves moves: run again
    await settle(services)


async def _device_of(client: httpx.AsyncClient, token: str, grant: dict[str, Any]) -> str:
    r = await client.get(f"/scheduler/allocations/{grant['allocationId']}", headers=auth(token))
    assert r.json()["status"] == "active"
    return str(r.json()["deviceId"])


async def test_a_dry_run_plans_spreading_moves_and_moves_nothing(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    (first, second), grants, token = await _crowded(client, admin_token)
    before = {g["allocationId"]: await _device_of(client, token, g) for g in grants}

    r = await client.post(
        "/scheduler/rebalance", headers=auth(admin_token), json=_body(first, dryRun=True)
    )

    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["dryRun"] is True and plan["job"] is None
    assert plan["leasesConsidered"] == 3
    assert len(plan["moves"]) == 1  # 3/0 → 2/1 evens the two nodes; 1/2 would not gain
    move = plan["moves"][0]
    assert (move["fromNodeId"], move["toNodeId"]) == (first.node["id"], second.node["id"])
    assert move["gain"] > 0 and "spread" in move["reason"]
    assert plan["objective"]["after"] > plan["objective"]["before"]
    assert plan["nodesInUse"] == {"before": 1, "after": 2}
    assert plan["provenOptimal"] is True
    assert {g["allocationId"]: await _device_of(client, token, g) for g in grants} == before


async def test_an_executed_rebalance_is_a_job_that_moves_each_lease_once(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    (first, second), grants, token = await _crowded(
        client, admin_token, leases=4, devices_per_node=4
    )

    r = await client.post("/scheduler/rebalance", headers=auth(admin_token), json=_body(first))

    assert r.status_code == 202, r.text
    plan = r.json()
    job = plan["job"]
    assert job["kind"] == "rebalance" and job["status"] == "running"
    assert job["progress"] == {"done": 0, "total": 2, "percent": 0.0}
    await _run_jobs(services)
    done = (await client.get(f"/scheduler/jobs/{job['id']}", headers=auth(admin_token))).json()
    assert done["status"] == "succeeded", done
    assert done["progress"]["percent"] == 100.0
    assert done["result"] == {"moved": 2, "skipped": 0} and done["errors"] == []
    second_devices = {d["id"] for d in second.devices}
    moved = {m["allocationId"] for m in plan["moves"]}
    for grant in grants:
        device = await _device_of(client, token, grant)
        assert (device in second_devices) == (grant["allocationId"] in moved)
    for move in plan["moves"]:
        (event,) = await outbox_payloads(services, "allocation.moved", move["allocationId"])
        assert event["reason"] == "rebalance" and event["toDeviceId"] == move["toDeviceId"]
        left = await run_sql(
            services, "SELECT status FROM devices WHERE id = %(d)s", {"d": move["fromDeviceId"]}
        )
        assert left[0]["status"] == "available"  # reset, then free again
    assert len(await outbox_payloads(services, "rebalance.started", job["id"])) == 1
    (completed,) = await outbox_payloads(services, "rebalance.completed", job["id"])
    assert (completed["moved"], completed["skipped"]) == (2, 0)
    assert (
        await run_sql(
            services,
            "SELECT 1 FROM usage_records WHERE allocation_id = ANY(%(ids)s::uuid[])",
            {"ids": list(moved)},
        )
        == []
    )  # a move bills nothing: the lease goes on


async def test_a_move_whose_target_was_taken_or_whose_lease_ended_is_skipped_and_recorded(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    (first, _), grants, token = await _crowded(client, admin_token, leases=4, devices_per_node=4)
    r = await client.post("/scheduler/rebalance", headers=auth(admin_token), json=_body(first))
    plan = r.json()
    taken, ended = plan["moves"]
    await run_sql(
        services,
        "UPDATE devices SET status = 'maintenance' WHERE id = %(d)s",
        {"d": taken["toDeviceId"]},
    )
    released = await client.post(
        "/scheduler/devices/release",
        headers=auth(token),
        json={"allocationId": ended["allocationId"]},
    )
    assert released.status_code == 200, released.text

    await _run_jobs(services)

    job = (
        await client.get(f"/scheduler/jobs/{plan['job']['id']}", headers=auth(admin_token))
    ).json()
    assert job["status"] == "succeeded"
    assert job["result"] == {"moved": 0, "skipped": 2}
    assert sorted(e["code"] for e in job["errors"]) == ["lease_gone", "target_taken"]
    assert (
        await _device_of(
            client, token, next(g for g in grants if g["allocationId"] == taken["allocationId"])
        )
        == taken["fromDeviceId"]
    )
    await run_sql(
        services,
        "UPDATE devices SET status = 'available' WHERE id = %(d)s",
        {"d": taken["toDeviceId"]},
    )


async def test_a_move_raced_by_a_release_ends_one_way_with_one_usage_record(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    (first, _), _, token = await _crowded(client, admin_token, leases=3)
    r = await client.post("/scheduler/rebalance", headers=auth(admin_token), json=_body(first))
    (move,) = r.json()["moves"]

    release = client.post(
        "/scheduler/devices/release",
        headers=auth(token),
        json={"allocationId": move["allocationId"]},
    )
    released, _ = await asyncio.gather(release, _run_jobs(services))

    assert released.status_code == 200, released.text
    records = await run_sql(
        services,
        "SELECT device_id FROM usage_records WHERE allocation_id = %(a)s",
        {"a": move["allocationId"]},
    )
    assert len(records) == 1
    moves = await outbox_payloads(services, "allocation.moved", move["allocationId"])
    assert len(moves) <= 1
    expected = move["toDeviceId"] if moves else move["fromDeviceId"]
    assert str(records[0]["device_id"]) == expected
    await settle(services)


async def test_one_rebalance_at_a_time_and_a_retried_key_gets_the_same_job(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    (first, _), _, _ = await _crowded(client, admin_token)
    headers = {**auth(admin_token), "Idempotency-Key": "rebalance-once"}

    r = await client.post("/scheduler/rebalance", headers=headers, json=_body(first))
    again = await client.post("/scheduler/rebalance", headers=headers, json=_body(first))
    other = await client.post("/scheduler/rebalance", headers=auth(admin_token), json=_body(first))

    assert r.status_code == again.status_code == 202, r.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["job"]["id"] == r.json()["job"]["id"]
    assert other.status_code == 409 and other.json()["code"] == "rebalance_in_progress"
    await _run_jobs(services)
    after = await client.post("/scheduler/rebalance", headers=auth(admin_token), json=_body(first))
    assert after.status_code == 202  # the first one is done
    await _run_jobs(services)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "validation_error"),
        ({"maxMoves": 1001}, 422, "validation_error"),
        ({"maxMoves": -1}, 422, "validation_error"),
        ({"maxMoves": 1, "maxSeconds": 60}, 422, "validation_error"),
        ({"maxMoves": 1, "strategy": "no-such-strategy"}, 404, "strategy_not_found"),
        ({"maxMoves": 1, "dryRun": "perhaps"}, 422, "validation_error"),
    ],
)
async def test_bad_rebalance_requests_are_refused(
    client: httpx.AsyncClient, admin_token: str, body: dict[str, Any], status: int, code: str
) -> None:
    r = await client.post("/scheduler/rebalance", headers=auth(admin_token), json=body)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text


async def test_a_user_may_not_rebalance(client: httpx.AsyncClient, admin_token: str) -> None:
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "not-an-admin")
    r = await client.post("/scheduler/rebalance", headers=auth(token), json={"maxMoves": 1})
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")


async def test_a_job_whose_move_cannot_run_fails_saying_why_and_stops(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    now = services.clock()
    job = Job(
        id=uuid.uuid4(),
        kind=REBALANCE_JOB,
        status=JobStatus.RUNNING,
        created_by="test",
        created_at=now,
        updated_at=now,
        items=({"allocationId": "not-a-uuid", "fromDeviceId": "x", "toDeviceId": "y"},),
        total=1,
    )
    async with services.uow() as uow:
        await uow.jobs.add(job)
        await uow.commit()

    await _run_jobs(services)

    r = await client.get(f"/scheduler/jobs/{job.id}", headers=auth(admin_token))
    failed = r.json()
    assert failed["status"] == "failed" and failed["finishedAt"] is not None
    assert failed["message"].startswith("ValueError")
    assert failed["progress"]["done"] == 0
    (event,) = await outbox_payloads(services, "rebalance.failed", str(job.id))
    assert event["message"] == failed["message"]


async def test_the_strategy_may_be_a_catalogue_entry_by_name_or_id(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    (first, _), _, _ = await _crowded(client, admin_token)
    name = unique("even-out")
    created = await client.post(
        "/scheduler/strategies",
        headers=auth(admin_token),
        json={"name": name, "type": "spread", "config": {"fit": 100, "node": 900}},
    )
    assert created.status_code == 201, created.text

    for wanted in (name, created.json()["id"]):
        r = await client.post(
            "/scheduler/rebalance",
            headers=auth(admin_token),
            json=_body(first, strategy=wanted, dryRun=True),
        )
        assert r.status_code == 200, r.text
        assert (r.json()["strategy"], r.json()["strategyType"]) == (name, "spread")
        assert len(r.json()["moves"]) == 1


async def test_the_rebalance_job_plans_then_follows_the_moves_to_their_end(
    client: httpx.AsyncClient,
    admin_token: str,
    services: Services,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (first, second), _, _ = await _crowded(client, admin_token)
    argv = ["--strategy", "spread", "--max-moves", "5", "--label", f"pool={first.label['pool']}"]

    assert await rebalance_job.run(rebalance_job.parse_args([*argv, "--dry-run"]), settings) is None
    assert "1 moves of 3 leases" in capsys.readouterr().out
    following = asyncio.create_task(
        rebalance_job.run(rebalance_job.parse_args([*argv, "--wait-seconds", "30"]), settings)
    )
    while not following.done():  # the housekeeper's part
        await _run_jobs(services)
        await asyncio.sleep(0.05)
    job = following.result()

    assert job is not None and job.status is JobStatus.SUCCEEDED
    assert dict(job.counts) == {"moved": 1, "skipped": 0}
    (move,) = job.items
    assert move["toNodeId"] == second.node["id"]
    with pytest.raises(SystemExit):
        rebalance_job.parse_args(["--max-moves", "5000"])
