"""API tokens: issued with an optional expiry, listed without secrets, revoked, refused on
every replica within a second of their revocation or expiry; a rotated admin token replaces
the old one; a database outage while a token is checked is 503, not 500."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from scheduler.bootstrap import Services, build_services
from scheduler.config import Settings
from scheduler.domain.errors import Unauthenticated
from scheduler.services.tenancy import ensure_admin_token
from serve.app import create_app
from tests.builders import auth, new_tenant, run_sql
from tests.integration.test_bad_input import assert_problem

pytestmark = pytest.mark.integration


@pytest.fixture
async def other_replica(settings: Settings) -> AsyncIterator[Services]:
    """A second process's services, caching credentials for 30 s."""
    services = build_services(settings.model_copy(update={"token_cache_seconds": 30.0}))
    yield services
    await services.close()


async def issue(
    client: httpx.AsyncClient, admin: str, tenant_id: str, user: str, **extra: object
) -> httpx.Response:
    return await client.post(
        "/scheduler/admin/tokens",
        headers=auth(admin),
        json={"tenantId": tenant_id, "userId": user, "role": "user", **extra},
    )


async def test_tokens_are_listed_without_secrets_and_revoked_once(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    tenant = await new_tenant(client, admin_token)
    expires = (services.clock() + timedelta(days=1)).isoformat()
    first = await issue(client, admin_token, tenant["id"], "ann", expiresAt=expires)
    second = await issue(client, admin_token, tenant["id"], "ben")
    assert first.status_code == second.status_code == 201, first.text
    assert first.json()["expiresAt"] and second.json()["expiresAt"] is None
    assert first.json()["id"] and first.json()["token"].startswith("pf_")

    listed = await client.get(
        "/scheduler/admin/tokens", headers=auth(admin_token), params={"tenantId": tenant["id"]}
    )
    assert listed.status_code == 200
    assert {t["userId"] for t in listed.json()} == {"ann", "ben"}
    assert all("token" not in t for t in listed.json())
    assert first.json()["token"] not in listed.text

    token = first.json()["token"]
    assert (await client.get("/scheduler/allocations", headers=auth(token))).status_code == 200
    r = await client.get("/scheduler/admin/tokens", headers=auth(token))
    assert_problem(r, 403, "forbidden")
    revoked = await client.delete(
        f"/scheduler/admin/tokens/{first.json()['id']}", headers=auth(admin_token)
    )
    again = await client.delete(
        f"/scheduler/admin/tokens/{first.json()['id']}", headers=auth(admin_token)
    )
    assert revoked.status_code == again.status_code == 200
    assert revoked.json()["revokedAt"] == again.json()["revokedAt"]
    assert_problem(
        await client.get("/scheduler/allocations", headers=auth(token)), 401, "unauthorized"
    )
    r = await client.delete(f"/scheduler/admin/tokens/{uuid.uuid4()}", headers=auth(admin_token))
    assert_problem(r, 404, "token_not_found")
    past = (services.clock() - timedelta(minutes=1)).isoformat()
    r = await issue(client, admin_token, tenant["id"], "late", expiresAt=past)
    assert_problem(r, 422, "invalid_request")


async def test_a_revoked_token_is_refused_by_every_replica_within_a_second(
    client: httpx.AsyncClient, admin_token: str, other_replica: Services
) -> None:
    tenant = await new_tenant(client, admin_token)
    issued = (await issue(client, admin_token, tenant["id"], "cached")).json()
    authenticator = other_replica.authenticator
    assert (await authenticator.authenticate(issued["token"])).token_id == uuid.UUID(issued["id"])
    for _ in range(50):  # the other replica hears the feed (its listener started above)
        if other_replica.changes.listening:
            break
        await asyncio.sleep(0.02)

    r = await client.delete(f"/scheduler/admin/tokens/{issued['id']}", headers=auth(admin_token))
    assert r.status_code == 200
    await asyncio.sleep(1.0)

    with pytest.raises(Unauthenticated):
        await authenticator.authenticate(issued["token"])


async def test_an_expired_token_is_refused_even_while_remembered(
    client: httpx.AsyncClient, admin_token: str, services: Services, other_replica: Services
) -> None:
    tenant = await new_tenant(client, admin_token)
    soon = (services.clock() + timedelta(hours=1)).isoformat()
    issued = (await issue(client, admin_token, tenant["id"], "brief", expiresAt=soon)).json()
    await other_replica.authenticator.authenticate(issued["token"])  # remembered for 30 s
    await run_sql(
        services,
        "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = %(id)s",
        {"id": uuid.UUID(issued["id"])},
    )
    # the remembered credential carries its expiry; the clock is what refuses it
    moved = other_replica.authenticator.tokens
    moved._clock = lambda: services.clock() + timedelta(hours=2)
    with pytest.raises(Unauthenticated, match="expired"):
        await moved.authenticate(issued["token"])
    r = await client.get("/scheduler/allocations", headers=auth(issued["token"]))
    assert_problem(r, 401, "unauthorized")


async def test_a_rotated_admin_token_replaces_the_old_one(
    client: httpx.AsyncClient, services: Services, admin_token: str
) -> None:
    old, new = f"pf_old_{uuid.uuid4().hex}", f"pf_new_{uuid.uuid4().hex}"
    await ensure_admin_token(services.uow(), old, now=services.clock())
    assert (await client.get("/scheduler/nodes", headers=auth(old))).status_code == 200

    await ensure_admin_token(services.uow(), new, now=services.clock())

    assert_problem(await client.get("/scheduler/nodes", headers=auth(old)), 401, "unauthorized")
    assert (await client.get("/scheduler/nodes", headers=auth(new))).status_code == 200
    # rotating back to a token revoked by an earlier rotation makes it valid again (and
    # gives the suite's admin token back to the tests after this one)
    await ensure_admin_token(services.uow(), admin_token, now=services.clock())
    assert (await client.get("/scheduler/nodes", headers=auth(admin_token))).status_code == 200
    assert_problem(await client.get("/scheduler/nodes", headers=auth(new)), 401, "unauthorized")


async def test_the_database_down_while_a_token_is_checked_is_503(settings: Settings) -> None:
    down = settings.model_copy(
        update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"}
    )
    services = build_services(down)
    transport = httpx.ASGITransport(app=create_app(services))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://pf") as client:
            r = await client.get("/scheduler/allocations", headers=auth("pf_whoever"))
        assert_problem(r, 503, "service_unavailable")
        assert r.headers["retry-after"]
    finally:
        await services.close()
