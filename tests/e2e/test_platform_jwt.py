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


def test_a_platform_jwt_works_over_serve(http: httpx.Client) -> None:
    now = int(time.time())
    claims = {
        "sub": "platform-user",
        "tenantId": "demo",  # the tenant `up --demo` created
        "roles": ["user"],
        "iss": "cloudphone-platform",
        "aud": "cloudphone-users",
        "exp": now + 300,
    }
    token = jwt.encode(claims, PLATFORM_JWT_SECRET, algorithm="HS256")

    mine = http.get("/scheduler/allocations", headers=auth(token))
    forged = http.get(
        "/scheduler/allocations",
        headers=auth(jwt.encode(claims, "not-the-secret-" + "x" * 32, algorithm="HS256")),
    )

    assert mine.status_code == 200, mine.text
    assert forged.status_code == 401
