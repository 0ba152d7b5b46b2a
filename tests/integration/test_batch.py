"""Batch operations over the HTTP app on real PostgreSQL: batch allocate (one plan; each on
its own, all or none, spread over nodes), batch release / extend / query within the
caller's rights, and Idempotency-Key on the batch and the single state-changing routes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from scheduler.bootstrap import Services
from tests.builders import (
    Pool,
    auth,
    in_pool,
    new_pool,
    new_spread_pool,
    new_tenant,
    new_token,
    run_sql,
)

pytestmark = pytest.mark.integration

BATCH = "/scheduler/allocations/batch"


def keyed(token: str, key: str | None = None) -> dict[str, str]:
    return {**auth(token), "Idempotency-Key": key or uuid.uuid4().hex}


async def available(client: httpx.AsyncClient, token: str, pool: Pool) -> int:
    label = f"pool:{pool.label['pool']}"
    r = await client.get(
        "/scheduler/devices/available", headers=auth(token), params={"label": label}
    )
    return int(r.json()["total"])


async def allocations_of(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    r = await client.get("/scheduler/allocations", headers=auth(token))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def usage_records(services: Services, allocation_ids: list[str]) -> dict[str, int]:
    rows = await run_sql(
        services,
        "SELECT allocation_id, count(*) AS n FROM usage_records"
        " WHERE allocation_id = ANY(%(ids)s::uuid[]) GROUP BY allocation_id",
        {"ids": allocation_ids},
    )
    counts = {str(r["allocation_id"]): int(r["n"]) for r in rows}
    return {i: counts.get(i, 0) for i in allocation_ids}


async def user(client: httpx.AsyncClient, admin: str, name: str, **quota: Any) -> str:
    tenant = await new_tenant(client, admin, **quota)
    return await new_token(client, admin, tenant["id"], name)


async def lease(client: httpx.AsyncClient, token: str, pool: Pool, **body: Any) -> str:
    r = await client.post(
        "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool, **body)
    )
    assert r.status_code == 201, r.text
    return str(r.json()["allocationId"])


# ---- batch allocate ----------------------------------------------------------------------


async def test_a_batch_of_five_on_three_devices_grants_three_and_refuses_two(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=3)
    token = await user(client, admin_token, "batcher")

    r = await client.post(
        BATCH, headers=auth(token), json={"requests": [in_pool(pool) for _ in range(5)]}
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["granted"], body["failed"]) == (3, 2)
    assert [item["index"] for item in body["results"]] == [0, 1, 2, 3, 4]
    granted = [i for i in body["results"] if i["status"] == "granted"]
    failed = [i for i in body["results"] if i["status"] == "failed"]
    assert len({i["allocation"]["deviceId"] for i in granted}) == 3
    assert {i["allocation"]["deviceId"] for i in granted} == {d["id"] for d in pool.devices}
    assert all(i["error"] is None and i["allocation"]["adbPort"] for i in granted)
    assert [i["error"]["code"] for i in failed] == ["no_capacity", "no_capacity"]
    assert all(i["allocation"] is None for i in failed)
    assert (await allocations_of(client, token))["total"] == 3
    assert await available(client, token, pool) == 0


async def test_an_atomic_batch_that_does_not_fit_allocates_nothing(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=3)
    token = await user(client, admin_token, "gang")

    r = await client.post(
        BATCH,
        headers=auth(token),
        json={"requests": [in_pool(pool) for _ in range(5)], "atomic": True},
    )

    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == "batch_not_placeable" and problem["status"] == 409
    assert (problem["granted"], problem["failed"]) == (0, 5)
    codes = [i["error"]["code"] for i in problem["results"]]
    assert sorted(codes) == ["batch_aborted"] * 3 + ["no_capacity"] * 2
    assert all(i["status"] == "failed" and i["allocation"] is None for i in problem["results"])
    assert (await allocations_of(client, token))["total"] == 0
    assert await available(client, token, pool) == 3
    events = await run_sql(
        services,
        "SELECT count(*) AS n FROM outbox_events WHERE type = 'allocation.granted'"
        " AND payload->>'deviceId' = ANY(%(ids)s)",
        {"ids": [d["id"] for d in pool.devices]},
    )
    assert events[0]["n"] == 0


async def test_an_atomic_batch_over_quota_rolls_back_its_charges(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=5)
    tenant = await new_tenant(client, admin_token, max_devices=2)
    token = await new_token(client, admin_token, tenant["id"], "capped")

    r = await client.post(
        BATCH,
        headers=auth(token),
        json={"requests": [in_pool(pool) for _ in range(3)], "atomic": True},
    )

    assert r.status_code == 409 and r.json()["code"] == "batch_not_placeable"
    codes = sorted(i["error"]["code"] for i in r.json()["results"])
    assert codes == ["batch_aborted", "batch_aborted", "quota_exceeded"]
    r = await client.get(f"/scheduler/admin/tenants/{tenant['id']}", headers=auth(admin_token))
    assert r.json()["usage"]["maxDevices"] == 0
    assert await available(client, token, pool) == 5


async def test_an_atomic_batch_that_fits_is_granted_in_one_go(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=3)
    token = await user(client, admin_token, "fits")

    r = await client.post(
        BATCH,
        headers=auth(token),
        json={
            "requests": [in_pool(pool, durationMinutes=20 + i) for i in range(3)],
            "atomic": True,
        },
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["granted"], body["failed"]) == (3, 0)
    grants = [i["allocation"] for i in body["results"]]
    assert len({g["deviceId"] for g in grants}) == 3
    assert len({g["allocatedAt"] for g in grants}) == 1  # one clock reading, one transaction
    minutes = [
        (
            await client.get(f"/scheduler/allocations/{g['allocationId']}", headers=auth(token))
        ).json()["durationMinutes"]
        for g in grants
    ]
    assert minutes == [20, 21, 22]
    assert await available(client, token, pool) == 0


async def test_an_anti_affinity_batch_spreads_over_distinct_nodes(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    pools = await new_spread_pool(client, admin_token, nodes=2, devices_per_node=3)
    token = await user(client, admin_token, "spread")
    request = in_pool(pools[0])

    r = await client.post(
        BATCH, headers=auth(token), json={"requests": [request] * 2, "antiAffinity": True}
    )
    assert r.status_code == 200, r.text
    nodes = {i["allocation"]["device"]["nodeId"] for i in r.json()["results"]}
    assert nodes == {p.node["id"] for p in pools}

    r = await client.post(
        BATCH, headers=auth(token), json={"requests": [request] * 3, "antiAffinity": True}
    )
    body = r.json()
    assert (body["granted"], body["failed"]) == (2, 1), body
    nodes_ = [i["allocation"]["device"]["nodeId"] for i in body["results"] if i["allocation"]]
    assert sorted(nodes_) == sorted(p.node["id"] for p in pools)
    failed = [i for i in body["results"] if i["status"] == "failed"]
    assert failed[0]["error"]["code"] == "no_capacity"


async def test_a_batch_item_for_another_user_is_refused_and_the_others_proceed(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=3)
    token = await user(client, admin_token, "self")

    r = await client.post(
        BATCH,
        headers=auth(token),
        json={"requests": [in_pool(pool), in_pool(pool, userId="someone-else"), in_pool(pool)]},
    )

    assert [i["status"] for i in r.json()["results"]] == ["granted", "failed", "granted"]
    assert r.json()["results"][1]["error"]["code"] == "forbidden"
    assert {i["allocation"]["userId"] for i in r.json()["results"] if i["allocation"]} == {"self"}


@pytest.mark.parametrize(
    "body",
    [
        {"requests": []},
        {"requests": [{}] * 101},
        {"requests": [{"queueIfUnavailable": True}]},
        {"requests": [{"maxWaitMinutes": 5}]},
        {"requests": [{"durationMinutes": 0}]},
        {"requests": [{}], "atomic": "sometimes"},
        {"requests": [{}], "spread": True},
    ],
)
async def test_a_malformed_batch_allocate_is_a_validation_error(
    client: httpx.AsyncClient, admin_token: str, body: dict[str, Any]
) -> None:
    token = await user(client, admin_token, "sloppy")

    r = await client.post(BATCH, headers=auth(token), json=body)

    assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/release", {"allocationIds": []}),
        ("/release", {"allocationIds": [str(uuid.uuid4()) for _ in range(501)]}),
        ("/release", {"allocationIds": ["not-a-uuid"]}),
        (
            "/extend",
            {"allocationIds": [str(uuid.uuid4()) for _ in range(101)], "additionalMinutes": 5},
        ),
        ("/extend", {"allocationIds": [str(uuid.uuid4())]}),
        ("/query", {"userIds": []}),
        ("/query", {"userIds": ["u"] * 101}),
        ("/query", {"userIds": [""]}),
    ],
)
async def test_malformed_batch_bodies_are_validation_errors(
    client: httpx.AsyncClient, admin_token: str, path: str, body: dict[str, Any]
) -> None:
    token = await user(client, admin_token, "sloppy")

    r = await client.post(BATCH + path, headers=auth(token), json=body)

    assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text


async def test_a_batch_needs_a_token(client: httpx.AsyncClient) -> None:
    r = await client.post(BATCH, json={"requests": [{}]})
    assert r.status_code == 401


# ---- batch release, extend, query --------------------------------------------------------


async def test_a_batch_release_ends_what_the_caller_may_end_and_reports_the_rest(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=4)
    token = await user(client, admin_token, "owner")
    stranger = await user(client, admin_token, "stranger")
    mine = [await lease(client, token, pool) for _ in range(3)]
    foreign = await lease(client, stranger, pool)
    unknown = str(uuid.uuid4())
    ids = [mine[0], foreign, mine[1], unknown, mine[2]]

    r = await client.post(BATCH + "/release", headers=auth(token), json={"allocationIds": ids})

    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["released"], body["failed"]) == (3, 2)
    assert [i["allocationId"] for i in body["results"]] == ids
    statuses = [i["status"] for i in body["results"]]
    assert statuses == ["released", "failed", "released", "failed", "released"]
    assert body["results"][1]["error"]["code"] == "allocation_not_found"
    assert body["results"][3]["error"]["code"] == "allocation_not_found"
    assert body["results"][0]["release"]["usageRecordId"]
    assert await usage_records(services, [*mine, foreign]) == {
        **dict.fromkeys(mine, 1),
        foreign: 0,
    }
    r = await client.get(f"/scheduler/allocations/{foreign}", headers=auth(stranger))
    assert r.json()["status"] == "active"
    await services.lifecycle.drain()  # type: ignore[attr-defined]
    assert await available(client, token, pool) == 3  # reset and back


async def test_a_retried_batch_release_replays_the_first_answer(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=2)
    token = await user(client, admin_token, "retry")
    ids = [await lease(client, token, pool) for _ in range(2)]
    headers = keyed(token)

    first = await client.post(BATCH + "/release", headers=headers, json={"allocationIds": ids})
    again = await client.post(BATCH + "/release", headers=headers, json={"allocationIds": ids})

    assert first.status_code == again.status_code == 200
    assert first.json()["released"] == 2
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await usage_records(services, ids) == dict.fromkeys(ids, 1)

    # without the key a second release finds nothing to end
    fresh = await client.post(BATCH + "/release", headers=auth(token), json={"allocationIds": ids})
    assert fresh.json()["released"] == 0
    assert await usage_records(services, ids) == dict.fromkeys(ids, 1)


async def test_a_key_reused_for_another_body_or_route_is_refused(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=2)
    token = await user(client, admin_token, "reuser")
    ids = [await lease(client, token, pool) for _ in range(2)]
    headers = keyed(token)
    first = await client.post(BATCH + "/release", headers=headers, json={"allocationIds": ids[:1]})
    assert first.status_code == 200

    other_body = await client.post(BATCH + "/release", headers=headers, json={"allocationIds": ids})
    other_route = await client.post(
        "/scheduler/devices/release", headers=headers, json={"allocationId": ids[1]}
    )
    single_allocate = await client.post(
        "/scheduler/devices/allocate", headers=headers, json=in_pool(pool)
    )

    for r in (other_body, other_route, single_allocate):
        assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused", r.text
    r = await client.get(f"/scheduler/allocations/{ids[1]}", headers=auth(token))
    assert r.json()["status"] == "active"
    # the same body in another key order and spacing is the same request
    same = await client.post(
        BATCH + "/release",
        headers={**headers, "Content-Type": "application/json"},
        content=f'{{ "allocationIds" : ["{ids[0]}"] }}',
    )
    assert same.status_code == 200 and same.content == first.content


async def test_concurrent_retries_of_one_batch_allocate_get_one_set_of_leases(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=10)
    token = await user(client, admin_token, "eager")
    headers = keyed(token)
    body = {"requests": [in_pool(pool) for _ in range(3)]}

    responses = await asyncio.gather(
        *(client.post(BATCH, headers=headers, json=body) for _ in range(8))
    )

    # each retry waits for the first one's transaction, then gets its answer
    assert [r.status_code for r in responses] == [200] * 8
    answered = responses
    assert len({r.content for r in answered}) == 1
    assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1
    later = await client.post(BATCH, headers=headers, json=body)
    assert later.status_code == 200 and later.content == answered[0].content
    assert (await allocations_of(client, token))["total"] == 3
    assert await available(client, token, pool) == 7


async def test_a_failed_atomic_batch_is_replayed_not_retried(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=1, max_devices=2)
    token = await user(client, admin_token, "stubborn")
    headers = keyed(token)
    body = {"requests": [in_pool(pool)] * 2, "atomic": True}
    first = await client.post(BATCH, headers=headers, json=body)
    assert first.status_code == 409, first.text
    r = await client.post(
        f"/scheduler/nodes/{pool.node['id']}/devices",
        headers=auth(admin_token),
        json={
            "count": 1,
            "spec": {"cpuCores": 2, "memoryMB": 4096, "storageMB": 32768, "androidVersion": "13"},
        },
    )
    assert r.status_code == 201, r.text

    again = await client.post(BATCH, headers=headers, json=body)

    assert again.status_code == 409 and again.content == first.content
    assert again.headers["content-type"].startswith("application/problem+json")
    assert (await allocations_of(client, token))["total"] == 0
    fresh = await client.post(BATCH, headers=keyed(token), json=body)  # now it fits
    assert fresh.status_code == 200 and fresh.json()["granted"] == 2


async def test_a_batch_extend_extends_what_the_caller_may_and_reports_the_rest(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=3)
    tenant = await new_tenant(client, admin_token)
    await client.patch(
        f"/scheduler/admin/tenants/{tenant['id']}",
        headers=auth(admin_token),
        json={"extensionPolicy": {"maxExtensions": 3, "maxTotalMinutes": 60}},
    )
    token = await new_token(client, admin_token, tenant["id"], "extender")
    stranger = await user(client, admin_token, "other")
    short = await lease(client, token, pool, durationMinutes=30)
    long = await lease(client, token, pool, durationMinutes=55)
    foreign = await lease(client, stranger, pool)
    ids = [short, foreign, long, str(uuid.uuid4())]

    r = await client.post(
        BATCH + "/extend", headers=auth(token), json={"allocationIds": ids, "additionalMinutes": 10}
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["extended"], body["failed"]) == (1, 3)
    results = body["results"]
    assert results[0]["status"] == "extended"
    assert results[0]["allocation"]["durationMinutes"] == 40
    assert results[0]["allocation"]["extendInfo"]["remainingExtends"] == 2
    assert [results[i]["error"]["code"] for i in (1, 2, 3)] == [
        "allocation_not_found",
        "extension_not_allowed",
        "allocation_not_found",
    ]
    r = await client.get(f"/scheduler/allocations/{foreign}", headers=auth(stranger))
    assert r.json()["extensionCount"] == 0


async def test_a_batch_query_answers_per_user_within_the_callers_scope(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=4)
    tenant = await new_tenant(client, admin_token)
    ann = await new_token(client, admin_token, tenant["id"], "ann")
    bob = await new_token(client, admin_token, tenant["id"], "bob")
    service = await new_token(client, admin_token, tenant["id"], "svc", role="service")
    outsider = await user(client, admin_token, "ann")  # another tenant's "ann"
    ended = await lease(client, ann, pool)
    await client.post("/scheduler/devices/release", headers=auth(ann), json={"allocationId": ended})
    active = await lease(client, ann, pool)
    await lease(client, bob, pool)
    await lease(client, outsider, pool)

    r = await client.post(BATCH + "/query", headers=auth(ann), json={"userIds": ["ann", "bob"]})
    assert r.status_code == 200, r.text
    own, other = r.json()["results"]
    assert own["status"] == "found" and own["total"] == 2
    assert {a["id"] for a in own["allocations"]} == {ended, active}
    assert other["status"] == "failed" and other["error"]["code"] == "not_found"
    assert other["allocations"] is None
    assert (r.json()["found"], r.json()["failed"]) == (1, 1)

    r = await client.post(
        BATCH + "/query",
        headers=auth(service),
        json={"userIds": ["ann", "bob", "nobody"], "activeOnly": True},
    )
    ann_, bob_, nobody = r.json()["results"]
    assert [a["id"] for a in ann_["allocations"]] == [active]  # not the other tenant's ann
    assert bob_["total"] == 1 and bob_["allocations"][0]["userId"] == "bob"
    assert nobody["status"] == "found" and nobody["total"] == 0

    r = await client.post(BATCH + "/query", headers=auth(admin_token), json={"userIds": ["ann"]})
    assert {a["tenantId"] for a in r.json()["results"][0]["allocations"]} >= {tenant["id"]}
    assert r.json()["results"][0]["total"] >= 3


# ---- Idempotency-Key on the single routes ------------------------------------------------


async def test_a_retried_release_replays_and_bills_once(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    token = await user(client, admin_token, "single")
    allocation_id = await lease(client, token, pool)
    headers = keyed(token)
    body = {"allocationId": allocation_id}

    first = await client.post("/scheduler/devices/release", headers=headers, json=body)
    again = await client.post("/scheduler/devices/release", headers=headers, json=body)

    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert await usage_records(services, [allocation_id]) == {allocation_id: 1}
    plain = await client.post("/scheduler/devices/release", headers=auth(token), json=body)
    assert plain.status_code == 404  # without the key it is a new request


async def test_a_refusal_is_stored_and_replayed_for_its_key(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    token = await user(client, admin_token, "early")
    stranger = await user(client, admin_token, "late")
    foreign = await lease(client, stranger, pool)
    headers = keyed(token)

    first = await client.post(
        "/scheduler/devices/release", headers=headers, json={"allocationId": foreign}
    )
    again = await client.post(
        "/scheduler/devices/release", headers=headers, json={"allocationId": foreign}
    )

    assert first.status_code == again.status_code == 404
    assert first.json()["code"] == "allocation_not_found"
    assert again.content == first.content
    assert again.headers["content-type"].startswith("application/problem+json")


async def test_a_retried_extend_extends_once(client: httpx.AsyncClient, admin_token: str) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    token = await user(client, admin_token, "ext")
    allocation_id = await lease(client, token, pool, durationMinutes=30)
    path = f"/scheduler/allocations/{allocation_id}/extend"
    headers = keyed(token)

    first = await client.put(path, headers=headers, json={"additionalMinutes": 10})
    again = await client.put(path, headers=headers, json={"additionalMinutes": 10})

    assert first.status_code == again.status_code == 200, first.text
    assert again.content == first.content
    r = await client.get(f"/scheduler/allocations/{allocation_id}", headers=auth(token))
    assert (r.json()["extensionCount"], r.json()["durationMinutes"]) == (1, 40)
    reused = await client.put(path, headers=headers, json={"additionalMinutes": 11})
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"


async def test_retried_queue_join_and_cancel_act_once(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=1)
    token = await user(client, admin_token, "patient")
    await lease(client, token, pool)
    join_headers = keyed(token)
    body = in_pool(pool, maxWaitMinutes=10)

    first = await client.post("/scheduler/queue/join", headers=join_headers, json=body)
    again = await client.post("/scheduler/queue/join", headers=join_headers, json=body)

    assert first.status_code == again.status_code == 201, first.text
    entry_id = first.json()["id"]
    assert again.json()["id"] == entry_id
    rows = await run_sql(
        services,
        "SELECT count(*) AS n FROM queue_entries WHERE tenant_id = %(t)s",
        {"t": uuid.UUID(first.json()["tenantId"])},
    )
    assert rows[0]["n"] == 1

    cancel_headers = keyed(token)
    path = f"/scheduler/queue/{entry_id}/cancel"
    cancelled = await client.post(path, headers=cancel_headers, json={"reason": "done"})
    replayed = await client.post(path, headers=cancel_headers, json={"reason": "done"})
    assert cancelled.status_code == replayed.status_code == 200, cancelled.text
    assert replayed.content == cancelled.content and cancelled.json()["status"] == "cancelled"
    fresh = await client.post(path, headers=keyed(token))  # a new key: it no longer waits
    assert fresh.status_code == 409 and fresh.json()["code"] == "queue_entry_not_waiting"
