"""The strategy catalogue on real PostgreSQL: built-in strategies, CRUD with validated
weights, activation (history, the placement settings, the optimizer's scores), exactly one
active under racing activations and against direct SQL, and the old route kept working."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from scheduler.bootstrap import Services
from tests.builders import auth, new_pool, new_tenant, new_token, run_sql, unique

pytestmark = pytest.mark.integration

TYPES = {"binpack", "spread", "balanced", "least_loaded"}


@pytest.fixture
async def token(client: httpx.AsyncClient, admin_token: str) -> str:
    """A user's token."""
    tenant = await new_tenant(client, admin_token)
    return await new_token(client, admin_token, tenant["id"], "strategist")


@pytest.fixture
async def restored(client: httpx.AsyncClient, admin_token: str) -> AsyncIterator[None]:
    """Leave the built-in binpack active, as the other tests expect."""
    yield
    r = await client.post(
        "/scheduler/strategy", headers=auth(admin_token), json={"strategy": "binpack"}
    )
    assert r.status_code == 200, r.text


async def _create(client: httpx.AsyncClient, admin: str, **body: Any) -> httpx.Response:
    return await client.post(
        "/scheduler/strategies",
        headers=auth(admin),
        json={"name": unique("strategy"), "type": "binpack", **body},
    )


async def test_the_built_ins_are_there_and_exactly_one_is_active(
    client: httpx.AsyncClient, admin_token: str, token: str
) -> None:
    listed = (await client.get("/scheduler/strategies", headers=auth(token))).json()
    active = (await client.get("/scheduler/strategies/active", headers=auth(token))).json()
    config = (await client.get("/scheduler/config", headers=auth(token))).json()

    assert {s["name"] for s in listed} >= TYPES
    assert [s["id"] for s in listed if s["isActive"]] == [active["id"]]
    assert active["type"] == config["strategy"]
    assert next(s for s in listed if s["name"] == "balanced")["config"] == {
        "fit": 200,
        "balance": 200,
        "node": 600,
    }


async def test_a_strategy_is_created_changed_activated_and_drives_the_optimizer(
    client: httpx.AsyncClient, admin_token: str, token: str, restored: None
) -> None:
    admin = auth(admin_token)
    pool = await new_pool(client, admin_token, devices=3)
    exact = {"minCpu": 2, "minMemory": 4096, "minStorage": 32768}  # new_pool's device size
    created = await _create(
        client, admin_token, description="fit only", config={"fit": 1000, "node": 0}
    )
    assert created.status_code == 201, created.text
    strategy = created.json()
    assert strategy["config"] == {"fit": 1000, "balance": 0, "node": 0}
    assert not strategy["isActive"]

    changed = await client.put(
        f"/scheduler/strategies/{strategy['id']}",
        headers=admin,
        json={"name": strategy["name"], "type": "spread", "config": {"fit": 100, "node": 900}},
    )
    assert changed.status_code == 200 and changed.json()["type"] == "spread"
    assert changed.json()["updatedAt"] > strategy["updatedAt"]
    put_back = await client.put(
        f"/scheduler/strategies/{strategy['id']}",
        headers=admin,
        json={"name": strategy["name"], "type": "binpack", "config": {"fit": 1000, "node": 0}},
    )
    assert put_back.status_code == 200
    activated = await client.post(f"/scheduler/strategies/{strategy['id']}/activate", headers=admin)
    assert activated.status_code == 200 and activated.json()["isActive"]

    active = (await client.get("/scheduler/strategies/active", headers=auth(token))).json()
    assert active["id"] == strategy["id"] and active["history"][0]["strategyId"] == strategy["id"]
    assert active["history"][0]["activatedBy"] == "admin"
    plan = await client.post(
        "/scheduler/schedule/batch",
        headers=auth(token),
        json={"requests": [{"preferredSpecs": {**exact, "labels": pool.label}}]},
    )
    assert plan.status_code == 200, plan.text
    (assignment,) = plan.json()["assignments"]
    terms = assignment["explanation"]["chosen"]["terms"]
    assert terms == {"fit": 1000, "node_busy": 0}  # an exact fit earns all 1000 points (not 600)


async def test_bad_strategies_are_refused_with_stable_codes(
    client: httpx.AsyncClient, admin_token: str, token: str
) -> None:
    admin = auth(admin_token)
    name = unique("strategy")
    assert (await _create(client, admin_token, name=name)).status_code == 201

    cases = {
        "duplicate name": (await _create(client, admin_token, name=name), 409, "already_exists"),
        "unknown term": (await _create(client, admin_token, config={"speed": 5}), 422, None),
        "not summing to 1000": (
            await _create(client, admin_token, config={"fit": 500}),
            422,
            "invalid_request",
        ),
        "balance outside balanced": (
            await _create(client, admin_token, config={"fit": 500, "balance": 100, "node": 400}),
            422,
            "invalid_request",
        ),
        "unknown type": (await _create(client, admin_token, type="zigzag"), 422, None),
        "not an admin": (
            await client.post(
                "/scheduler/strategies", headers=auth(token), json={"name": "x", "type": "spread"}
            ),
            403,
            None,
        ),
    }
    for case, (response, status, code) in cases.items():
        assert response.status_code == status, (case, response.text)
        if code:
            assert response.json()["code"] == code, case

    active = (await client.get("/scheduler/strategies/active", headers=admin)).json()
    refused = await client.delete(f"/scheduler/strategies/{active['id']}", headers=admin)
    assert refused.status_code == 409 and refused.json()["code"] == "strategy_active"
    spare = (await _create(client, admin_token)).json()
    deleted = await client.delete(f"/scheduler/strategies/{spare['id']}", headers=admin)
    assert deleted.status_code == 200
    gone = await client.get(f"/scheduler/strategies/{spare['id']}", headers=admin)
    assert gone.status_code == 404 and gone.json()["code"] == "strategy_not_found"


async def test_racing_activations_leave_exactly_one_active_and_both_in_the_history(
    client: httpx.AsyncClient, admin_token: str, services: Services, restored: None
) -> None:
    admin = auth(admin_token)
    ids = [(await _create(client, admin_token)).json()["id"] for _ in range(4)]

    responses = await asyncio.gather(
        *(client.post(f"/scheduler/strategies/{i}/activate", headers=admin) for i in ids * 3)
    )

    assert {r.status_code for r in responses} == {200}
    active = await run_sql(services, "SELECT id::text AS id FROM strategies WHERE is_active")
    assert len(active) == 1 and active[0]["id"] in ids
    history = await run_sql(
        services,
        "SELECT count(*) AS n FROM strategy_activations WHERE strategy_id::text = ANY(%(ids)s)",
        {"ids": ids},
    )
    assert history[0]["n"] == 12
    (config,) = await run_sql(services, "SELECT strategy FROM scheduler_config")
    assert config["strategy"] == "binpack"


async def test_the_database_refuses_a_catalogue_without_an_active_strategy(
    services: Services,
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        await run_sql(services, "UPDATE strategies SET is_active = false")
    with pytest.raises(psycopg.errors.UniqueViolation):
        await run_sql(services, "UPDATE strategies SET is_active = true")
    active = await run_sql(services, "SELECT count(*) AS n FROM strategies WHERE is_active")
    assert active[0]["n"] == 1


async def test_the_old_strategy_route_activates_a_types_built_in(
    client: httpx.AsyncClient, admin_token: str, token: str, restored: None
) -> None:
    r = await client.post(
        "/scheduler/strategy", headers=auth(admin_token), json={"strategy": "least_loaded"}
    )
    active = (await client.get("/scheduler/strategies/active", headers=auth(token))).json()

    assert r.json() == {"strategy": "least_loaded"}
    assert (active["name"], active["type"], active["isActive"]) == (
        "least_loaded",
        "least_loaded",
        True,
    )
    tenant = await new_tenant(client, admin_token)
    user = await new_token(client, admin_token, tenant["id"], "reader")
    assert (await client.get("/scheduler/strategies", headers=auth(user))).status_code == 200
