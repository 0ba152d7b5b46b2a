"""Rate limits: token buckets in Redis per token and per tenant (the tenant's own limit set by
an admin), per client address for unknown tokens; 429 ``rate_limited`` with ``Retry-After``
and ``RateLimit-*`` headers; requests go on while Redis is down."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from scheduler.config import Settings
from scheduler.domain.rate_limits import TENANT_FACTOR, RateLimit, buckets_of
from tests.builders import app_client, auth, new_tenant, new_token
from tests.integration.test_bad_input import assert_problem

pytestmark = pytest.mark.integration


async def test_a_tenants_own_limit_refuses_the_excess_with_429_and_headers(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    tenant = await new_tenant(client, admin_token)
    r = await client.patch(
        f"/scheduler/admin/tenants/{tenant['id']}",
        headers=auth(admin_token),
        json={"rateLimit": {"requestsPerSecond": 1, "burst": 3}},
    )
    assert r.status_code == 200 and r.json()["rateLimit"] == {"requestsPerSecond": 1, "burst": 3}
    token = await new_token(client, admin_token, tenant["id"], "hasty")
    # the limiter's script is loaded in Redis by now (the admin's requests ran it)

    answers = [await client.get("/scheduler/allocations", headers=auth(token)) for _ in range(4)]

    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert int(answers[2].headers["RateLimit-Remaining"]) == 0
    assert_problem(answers[3], 429, "rate_limited")
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert answers[3].headers["RateLimit-Remaining"] == "0"
    await asyncio.sleep(1.1)  # 1 per second: a token is back
    assert (await client.get("/scheduler/allocations", headers=auth(token))).status_code == 200
    other = await new_token(client, admin_token, tenant["id"], "patient")
    assert (await client.get("/scheduler/allocations", headers=auth(other))).status_code == 200


async def test_rate_limits_are_bounded(client: httpx.AsyncClient, admin_token: str) -> None:
    tenant = await new_tenant(client, admin_token)
    for limit in ({"requestsPerSecond": 0, "burst": 1}, {"requestsPerSecond": 1, "burst": 0}):
        r = await client.patch(
            f"/scheduler/admin/tenants/{tenant['id']}",
            headers=auth(admin_token),
            json={"rateLimit": limit},
        )
        assert_problem(r, 422, "validation_error")


async def test_unknown_tokens_are_limited_per_client_address(settings: Settings) -> None:
    strict = settings.model_copy(
        update={
            "rate_limit_rps": 0.5,
            "rate_limit_burst": 2,
            "events_stream": f"{settings.events_stream}:{uuid.uuid4().hex[:6]}",
        }
    )
    async for client in app_client(strict):
        codes = [
            (await client.get("/scheduler/allocations", headers=auth("pf_guess"))).status_code
            for _ in range(3)
        ]
        assert codes == [401, 401, 429]


async def test_requests_go_on_while_redis_is_down(settings: Settings, admin_token: str) -> None:
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async for client in app_client(down):
        r = await client.get("/scheduler/admin/tenants", headers=auth(admin_token))
        assert r.status_code == 200
        assert "RateLimit-Limit" not in r.headers


def test_a_tenants_tokens_together_may_go_ten_times_faster_than_each() -> None:
    token, tenant = uuid.uuid4(), uuid.uuid4()

    buckets = dict(buckets_of(token, tenant, None, RateLimit(5, 10)))

    assert buckets[f"token:{token}"] == RateLimit(5, 10)
    assert buckets[f"tenant:{tenant}"] == RateLimit(5 * TENANT_FACTOR, 10 * TENANT_FACTOR)
