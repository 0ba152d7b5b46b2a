"""Platform callers as principals: claims and gateway headers, roles, rate-limit identity."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from scheduler.domain.errors import Unauthenticated
from scheduler.domain.identity import Role
from scheduler.domain.platform_identity import (
    admin_roles_of,
    user_from_claims,
    user_from_gateway,
)

ADMINS = admin_roles_of("super_admin, admin,,")


def test_claims_name_the_user_the_tenant_and_the_expiry() -> None:
    user = user_from_claims({"sub": "u1", "tenantId": "acme", "roles": ["user"], "exp": 10})

    assert (user.user_id, user.tenant, user.role(ADMINS)) == ("u1", "acme", Role.USER)
    assert user.expires_at == datetime.fromtimestamp(10, UTC)


@pytest.mark.parametrize(
    "claims",
    [{"roles": ["admin"]}, {"roles": ["user", "super_admin"]}, {"isSuperAdmin": True}],
)
def test_admin_roles_and_super_admins_are_admins(claims: dict[str, object]) -> None:
    assert user_from_claims({"sub": "u", "tenantId": "t", **claims}).role(ADMINS) is Role.ADMIN


@pytest.mark.parametrize(
    "claims",
    [
        {"tenantId": "t"},
        {"sub": "u"},
        {"sub": "", "tenantId": "t"},
        {"sub": "u", "tenantId": 7},
        {"sub": "u", "tenantId": "t", "roles": "admin"},
        {"sub": "u" * 201, "tenantId": "t"},
    ],
)
def test_claims_without_a_user_or_a_tenant_are_refused(claims: dict[str, object]) -> None:
    with pytest.raises(Unauthenticated):
        user_from_claims(claims)


def test_the_gateways_headers_name_a_user() -> None:
    roles = base64.b64encode(json.dumps(["admin"]).encode()).decode()
    user = user_from_gateway({"x-user-id": "u", "x-user-tenant": "t", "x-user-roles": roles})

    assert (user.user_id, user.tenant, user.role(ADMINS)) == ("u", "t", Role.ADMIN)
    assert user_from_gateway({"x-user-id": "u", "x-user-tenant": "t"}).role(ADMINS) is Role.USER


@pytest.mark.parametrize("roles", ["%%%", base64.b64encode(b'{"a": 1}').decode()])
def test_malformed_gateway_roles_are_refused(roles: str) -> None:
    with pytest.raises(Unauthenticated, match="x-user-roles"):
        user_from_gateway({"x-user-id": "u", "x-user-tenant": "t", "x-user-roles": roles})


def test_each_user_of_a_tenant_has_its_own_rate_limit_identity() -> None:
    one = user_from_claims({"sub": "one", "tenantId": "t"})
    again = user_from_claims({"sub": "one", "tenantId": "t", "roles": ["admin"]})
    two = user_from_claims({"sub": "two", "tenantId": "t"})

    assert one.token_id == again.token_id != two.token_id
