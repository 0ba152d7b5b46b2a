"""A platform JWT over real Ray Serve. The replicas' arguments never carry the platform's
secret (``tests/unit/test_config.py``): that it verifies here shows they read it from the
environment ``phonefleet up`` ran in."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from tests.e2e.conftest import PLATFORM_JWT_SECRET, auth

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _claims(*roles: str) -> dict[str, object]:
    return {
        "sub": "platform-user",
        "tenantId": "demo",  # the tenant `up --demo` created
        "roles": list(roles),
        "iss": "cloudphone-platform",
        "aud": "cloudphone-users",
        "exp": int(time.time()) + 300,
    }


def test_a_platform_jwt_works_over_serve(http: httpx.Client) -> None:
    claims = _claims("user")
    token = jwt.encode(claims, PLATFORM_JWT_SECRET, algorithm="HS256")

    mine = http.get("/scheduler/allocations", headers=auth(token))
    forged = http.get(
        "/scheduler/allocations",
        headers=auth(jwt.encode(claims, "not-the-secret-" + "x" * 32, algorithm="HS256")),
    )

    assert mine.status_code == 200, mine.text
    assert forged.status_code == 401


def test_the_console_mount_answers_in_its_envelope_over_serve(http: httpx.Client) -> None:
    """The admin console's calls under /cloudphone, through Serve's proxy: the envelope, the
    console's shapes, and a refusal in the original's error shape."""
    admin = jwt.encode(_claims("admin"), PLATFORM_JWT_SECRET, algorithm="HS256")
    headers = {**auth(admin), "x-request-id": "console-e2e"}

    nodes = http.get("/cloudphone/scheduler/nodes?page=1&pageSize=100", headers=headers)
    stats = http.get("/cloudphone/scheduler/resources/cluster-stats", headers=headers)
    refused = http.get("/cloudphone/scheduler/nodes", headers=auth("pf_not_a_token"))

    assert nodes.status_code == 200, nodes.text
    body = nodes.json()
    assert (body["success"], body["requestId"], body["data"]["page"]) == (True, "console-e2e", 1)
    assert any(n["status"] == "active" for n in body["data"]["items"])
    assert isinstance(stats.json()["data"]["capacity"]["storageGB"], int)
    assert refused.status_code == 401
    assert refused.json()["success"] is False and refused.json()["statusCode"] == 401
