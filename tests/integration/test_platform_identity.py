"""The platform's callers (issue 12 §1): its JWTs beside PhoneFleet's tokens, its tenants
mapped by name (created on first sight with the configured quota, else 403), its admins by
role, and its gateway's ``x-user-*`` headers trusted only with the proxy secret."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scheduler.config import Settings
from tests.builders import app_client, auth, new_pool, new_tenant, unique
from tests.integration.test_bad_input import assert_problem

pytestmark = pytest.mark.integration

SECRET = "platform-secret-" + "x" * 32
PROXY_SECRET = "gateway-" + uuid.uuid4().hex
QUOTA = {"maxDevices": 3, "cpuCores": 16, "memoryMB": 65536, "storageMB": 10**6}


def platform_jwt(key: Any = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "sub": "user-1",
        "tenantId": "acme",
        "roles": ["user"],
        "iss": "cloudphone-platform",
        "aud": "cloudphone-users",
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=algorithm)


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the platform's secret, its default quota and its gateway's secret."""
    configured = settings.model_copy(
        update={
            "jwt_secret": SECRET,
            "jwt_default_quota": QUOTA,
            "trusted_proxy_secret": PROXY_SECRET,
        }
    )
    async for client in app_client(configured):
        yield client


async def test_a_platform_user_of_a_known_tenant_allocates_with_its_jwt(
    platform: httpx.AsyncClient, client: httpx.AsyncClient, admin_token: str
) -> None:
    tenant = await new_tenant(client, admin_token)
    pool = await new_pool(client, admin_token, devices=1)
    token = platform_jwt(tenantId=tenant["name"], sub="alice")

    r = await platform.post(
        "/scheduler/devices/allocate",
        headers=auth(token),
        json={"durationMinutes": 30, "preferredSpecs": {"labels": pool.label}},
    )

    assert r.status_code == 201, r.text
    assert (r.json()["tenantId"], r.json()["userId"]) == (tenant["id"], "alice")
    assert (await platform.get("/scheduler/nodes", headers=auth(token))).status_code == 403


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (platform_jwt(exp=int(time.time()) - 60), "expired"),
        (platform_jwt(iss="someone-else"), "issuer"),
        (platform_jwt(aud="other-audience"), "audience"),
        (platform_jwt(key="not-the-secret-" + "y" * 32), "signature"),
        (platform_jwt(exp=None), "'exp'"),
        (jwt.encode({"sub": "x", "tenantId": "acme"}, None, algorithm="none"), "signed with"),
        ("a.b.c", "not a valid JWT"),
    ],
)
async def test_a_jwt_that_does_not_verify_is_401(
    platform: httpx.AsyncClient, token: str, why: str
) -> None:
    r = await platform.get("/scheduler/allocations", headers=auth(token))

    assert_problem(r, 401, "unauthorized")
    assert why in r.json()["detail"]


async def test_an_unknown_tenant_is_created_once_with_the_default_quota(
    platform: httpx.AsyncClient, client: httpx.AsyncClient, admin_token: str
) -> None:
    name = unique("platform-tenant")
    tokens = [platform_jwt(tenantId=name, sub=f"u{i}") for i in range(8)]

    answers = await asyncio.gather(
        *(platform.get("/scheduler/allocations", headers=auth(t)) for t in tokens)
    )

    assert [r.status_code for r in answers] == [200] * 8
    rows = await tenants_named(client, admin_token, name)
    assert len(rows) == 1 and rows[0]["quota"]["maxDevices"] == QUOTA["maxDevices"]


async def tenants_named(client: httpx.AsyncClient, admin_token: str, name: str) -> list[Any]:
    tenants = (await client.get("/scheduler/admin/tenants", headers=auth(admin_token))).json()
    items = tenants["items"] if isinstance(tenants, dict) else tenants
    return [t for t in items if t["name"] == name]


async def test_without_a_default_quota_an_unknown_tenant_is_403(settings: Settings) -> None:
    async for client in app_client(settings.model_copy(update={"jwt_secret": SECRET})):
        r = await client.get(
            "/scheduler/allocations", headers=auth(platform_jwt(tenantId=unique("nobody")))
        )
        assert_problem(r, 403, "tenant_not_found")


async def test_super_admins_and_admin_roles_are_admins(
    platform: httpx.AsyncClient, client: httpx.AsyncClient, admin_token: str
) -> None:
    tenant = await new_tenant(client, admin_token)
    for claims in ({"isSuperAdmin": True}, {"roles": ["admin"]}, {"roles": ["super_admin"]}):
        token = platform_jwt(tenantId=tenant["name"], **claims)
        assert (await platform.get("/scheduler/nodes", headers=auth(token))).status_code == 200
    user = platform_jwt(tenantId=tenant["name"], roles=["user", "operator"])
    assert_problem(await platform.get("/scheduler/nodes", headers=auth(user)), 403, "forbidden")


async def test_phonefleet_tokens_keep_working_beside_jwts(
    platform: httpx.AsyncClient, admin_token: str
) -> None:
    assert (await platform.get("/scheduler/nodes", headers=auth(admin_token))).status_code == 200
    assert_problem(
        await platform.get("/scheduler/nodes", headers=auth("pf_unknown")), 401, "unauthorized"
    )


async def test_an_rs256_public_key_verifies_the_platforms_tokens(
    settings: Settings, client: httpx.AsyncClient, admin_token: str
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tenant = await new_tenant(client, admin_token)
    async for platform in app_client(
        settings.model_copy(update={"jwt_public_key": public.decode()})
    ):
        signed = platform_jwt(key, "RS256", tenantId=tenant["name"])
        assert (
            await platform.get("/scheduler/allocations", headers=auth(signed))
        ).status_code == 200
        # the public key used as an HMAC secret: the classic confusion, refused
        forged = platform_jwt(SECRET, "HS256", tenantId=tenant["name"])
        assert_problem(
            await platform.get("/scheduler/allocations", headers=auth(forged)),
            401,
            "unauthorized",
        )


def gateway(user: str, tenant: str, roles: list[str], secret: str | None) -> dict[str, str]:
    headers = {
        "x-user-id": user,
        "x-user-tenant": tenant,
        "x-user-roles": base64.b64encode(json.dumps(roles).encode()).decode(),
    }
    if secret is not None:
        headers["x-phonefleet-proxy-secret"] = secret
    return headers


async def test_the_gateways_headers_are_trusted_only_with_the_proxy_secret(
    platform: httpx.AsyncClient, client: httpx.AsyncClient, admin_token: str
) -> None:
    tenant = await new_tenant(client, admin_token)

    trusted = await platform.get(
        "/scheduler/nodes", headers=gateway("bob", tenant["name"], ["admin"], PROXY_SECRET)
    )
    wrong = await platform.get(
        "/scheduler/nodes", headers=gateway("bob", tenant["name"], ["admin"], "guess")
    )
    bare = await platform.get(
        "/scheduler/nodes", headers=gateway("bob", tenant["name"], ["admin"], None)
    )

    assert trusted.status_code == 200, trusted.text
    assert_problem(wrong, 401, "unauthorized")
    assert_problem(bare, 401, "unauthorized")
    # a PhoneFleet token on a request with forged headers speaks for its own owner only
    mine = await platform.get(
        "/scheduler/allocations",
        headers={**gateway("mallory", tenant["name"], ["admin"], "guess"), **auth(admin_token)},
    )
    assert mine.status_code == 200


async def test_rate_limits_key_on_the_platform_user(
    settings: Settings, client: httpx.AsyncClient, admin_token: str
) -> None:
    tenant = await new_tenant(client, admin_token)
    strict = {"jwt_secret": SECRET, "rate_limit_rps": 1.0, "rate_limit_burst": 2}
    async for platform in app_client(settings.model_copy(update=strict)):
        first, second = (platform_jwt(tenantId=tenant["name"], sub=s) for s in ("one", "two"))
        codes = [
            (await platform.get("/scheduler/allocations", headers=auth(first))).status_code
            for _ in range(3)
        ]
        other = await platform.get("/scheduler/allocations", headers=auth(second))
        assert codes == [200, 200, 429]
        assert other.status_code == 200  # another user of the same tenant has its own bucket


async def test_a_malformed_gateway_roles_header_is_401(platform: httpx.AsyncClient) -> None:
    headers = {**gateway("bob", "acme", [], PROXY_SECRET), "x-user-roles": "%%%"}
    assert_problem(await platform.get("/scheduler/nodes", headers=headers), 401, "unauthorized")
