from __future__ import annotations

import hashlib
import re
import uuid

import pytest

from scheduler.domain.errors import Forbidden, InvalidRequest
from scheduler.domain.identity import (
    TOKEN_PREFIX,
    Principal,
    Role,
    Scope,
    acting_user,
    hash_token,
    new_token,
    require_admin,
    scope_of,
)

TENANT = uuid.UUID("00000000-0000-4000-8000-000000000001")


def principal(role: Role, user_id: str = "alice") -> Principal:
    return Principal(tenant_id=TENANT, user_id=user_id, role=role)


# ---- acting_user -----------------------------------------------------------------------


def test_a_user_naming_nobody_acts_as_itself() -> None:
    assert acting_user(principal(Role.USER), None) == "alice"


def test_a_user_naming_itself_acts_as_itself() -> None:
    assert acting_user(principal(Role.USER), "alice") == "alice"


@pytest.mark.parametrize("other", ["bob", "ALICE", "alice ", ""])
def test_a_user_may_not_act_as_anybody_else(other: str) -> None:
    with pytest.raises(Forbidden):
        acting_user(principal(Role.USER), other)


def test_a_service_acts_for_the_user_it_names() -> None:
    assert acting_user(principal(Role.SERVICE, "billing-svc"), "bob") == "bob"


@pytest.mark.parametrize("missing", [None, ""])
def test_a_service_that_names_no_user_makes_an_invalid_request(missing: str | None) -> None:
    with pytest.raises(InvalidRequest, match="userId"):
        acting_user(principal(Role.SERVICE, "billing-svc"), missing)


@pytest.mark.parametrize("named", ["bob", "alice", "someone-in-another-team"])
def test_an_admin_may_act_for_anyone_it_names(named: str) -> None:
    assert acting_user(principal(Role.ADMIN, "root"), named) == named


def test_an_admin_naming_nobody_acts_as_itself() -> None:
    assert acting_user(principal(Role.ADMIN, "root"), None) == "root"


# ---- scope_of and require_admin --------------------------------------------------------


def test_an_admin_sees_every_tenant_and_user() -> None:
    assert scope_of(principal(Role.ADMIN)) == Scope(None, None)


def test_a_service_sees_every_user_of_its_own_tenant() -> None:
    assert scope_of(principal(Role.SERVICE)) == Scope(TENANT, None)


def test_a_user_sees_only_its_own_rows() -> None:
    assert scope_of(principal(Role.USER)) == Scope(TENANT, "alice")


def test_an_admin_passes_the_admin_check() -> None:
    require_admin(principal(Role.ADMIN))


@pytest.mark.parametrize("role", [Role.SERVICE, Role.USER])
def test_anyone_but_an_admin_is_forbidden_admin_operations(role: Role) -> None:
    with pytest.raises(Forbidden):
        require_admin(principal(role))


def test_only_the_admin_role_is_admin() -> None:
    assert [r for r in Role if principal(r).is_admin] == [Role.ADMIN]


# ---- tokens ----------------------------------------------------------------------------


def test_a_new_token_is_prefixed_and_url_safe() -> None:
    token = new_token()

    assert token.startswith(TOKEN_PREFIX)
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", token[len(TOKEN_PREFIX) :])


def test_new_tokens_do_not_repeat() -> None:
    assert len({new_token() for _ in range(200)}) == 200


def test_a_token_hash_is_its_sha256_digest() -> None:
    token = "pf_example-token"

    assert hash_token(token) == hashlib.sha256(token.encode()).digest()
    assert len(hash_token(token)) == 32


def test_a_token_always_hashes_the_same_and_different_tokens_differ() -> None:
    token = new_token()

    assert hash_token(token) == hash_token(token)
    assert hash_token(token) != hash_token(token + "x")
