"""Schemathesis against the app's own OpenAPI schema: every operation, as an admin and as a
user, over HTTP (uvicorn in a process of its own, on the real database). Goal: no server
error, every 2xx matches its documented schema, every error is problem+json with a code."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any, cast

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import FlakyStrategyDefinition
from psycopg import sql
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import response_schema_conformance

from scheduler.adapters.migrations import upgrade_to_head
from scheduler.bootstrap import Services, build_services
from scheduler.config import Settings
from scheduler.services.tenancy import ensure_admin_token
from serve.app import create_app
from tests.builders import Server, free_port, start_server

pytestmark = [pytest.mark.integration, pytest.mark.fuzz]

#: Examples per operation and principal (``PHONEFLEET_FUZZ_EXAMPLES`` raises it locally).
EXAMPLES = int(os.environ.get("PHONEFLEET_FUZZ_EXAMPLES", "100"))


@pytest.fixture(scope="module")
def fuzz_settings(server_urls: tuple[str, str], settings: Settings) -> Iterator[Settings]:
    """A database of its own: what the fuzzer creates (queue entries, bookings, leases of any
    device) never meets the other tests' fleets."""
    base = server_urls[0].replace("postgresql+psycopg://", "postgresql://")
    name = f"phonefleet_fuzz_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = base.rsplit("/", 1)[0] + "/" + name
    upgrade_to_head(url)
    yield settings.model_copy(
        update={
            "database_url": url.replace("postgresql://", "postgresql+psycopg://"),
            "rate_limit_rps": 100_000.0,
            "rate_limit_burst": 100_000,
        }
    )
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="module")
def fuzz_admin(fuzz_settings: Settings) -> str:
    token = "pf_fuzz_admin_" + uuid.uuid4().hex

    async def bootstrap() -> None:
        services = build_services(fuzz_settings)
        await ensure_admin_token(services.uow(), token, now=services.clock())
        await services.close()

    asyncio.run(bootstrap())
    return token


@pytest.fixture(scope="module")
def fuzzed_app(fuzz_settings: Settings, fuzz_admin: str) -> Iterator[Server]:
    server = start_server(fuzz_settings, free_port(), [])
    yield server
    server.process.kill()
    server.process.wait()


@pytest.fixture(scope="module")
def tokens(fuzzed_app: Server, fuzz_admin: str) -> dict[str, str]:
    """An admin token and a user token of a tenant with a pool of its own."""
    with httpx.Client(base_url=fuzzed_app.url, timeout=30) as client:
        admin = {"Authorization": f"Bearer {fuzz_admin}"}
        name = f"fuzz-{uuid.uuid4().hex[:8]}"
        tenant = client.post(
            "/scheduler/admin/tenants",
            headers=admin,
            json={
                "name": name,
                "quota": {"maxDevices": 50, "cpuCores": 500, "memoryMB": 10**7, "storageMB": 10**9},
            },
        ).json()
        node = client.post(
            "/scheduler/nodes",
            headers=admin,
            json={
                "name": name,
                "capacity": {
                    "cpuCores": 64,
                    "memoryMB": 10**6,
                    "storageMB": 10**8,
                    "maxDevices": 8,
                },
            },
        ).json()
        client.post(
            f"/scheduler/nodes/{node['id']}/devices",
            headers=admin,
            json={
                "count": 8,
                "spec": {
                    "cpuCores": 2,
                    "memoryMB": 2048,
                    "storageMB": 8192,
                    "androidVersion": "13",
                },
            },
        )
        user = client.post(
            "/scheduler/admin/tokens",
            headers=admin,
            json={"tenantId": tenant["id"], "userId": "fuzzer", "role": "user"},
        ).json()["token"]
    return {"admin": fuzz_admin, "user": user}


#: The schema the app serves at /openapi.json (it does not depend on the services, so the
#: app is built without them here, at collection time).
schema = schemathesis.openapi.from_dict(
    create_app(cast(Services, None)).openapi(),
    config=SchemathesisConfig.from_dict({"generation": {"mode": "all"}}),
)


#: Request heads longer than this are refused by the HTTP server itself (h11's limit in
#: uvicorn, HAProxy's buffer in front of Serve), with a plain 400, before the app sees them.
SERVER_HEAD_LIMIT = 16 * 1024


def problem_json_with_a_code(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error answer is ``application/problem+json`` with a stable ``code`` (except the
    HTTP server's own refusal of a request head over its limit)."""
    if response.status_code < 400:
        return None
    media = response.headers.get("content-type", [""])
    media = media[0] if isinstance(media, list) else media
    request = response.request
    if response.status_code == 400 and len(str(request.url)) > SERVER_HEAD_LIMIT:
        assert media.startswith("text/plain"), media
        return None
    assert media.startswith("application/problem+json"), (response.status_code, media)
    body = response.json()
    assert isinstance(body.get("code"), str) and body["code"], body
    return None


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


def call(case: Any, url: str, token: str) -> None:
    case.call_and_validate(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        checks=[not_a_server_error, response_schema_conformance, problem_json_with_a_code],
        timeout=30,
    )


@schema.parametrize()
@FUZZ
def test_every_operation_as_an_admin(case: Any, tokens: dict[str, str], fuzzed_app: Server) -> None:
    call(case, fuzzed_app.url, tokens["admin"])


@schema.parametrize()
@FUZZ
def test_every_operation_as_a_user(case: Any, tokens: dict[str, str], fuzzed_app: Server) -> None:
    call(case, fuzzed_app.url, tokens["user"])


#: Scenarios (call sequences) per principal in the stateful run.
SCENARIOS = int(os.environ.get("PHONEFLEET_FUZZ_SCENARIOS", "40"))


@pytest.mark.parametrize("principal", ["admin", "user"])
def test_linked_call_sequences(principal: str, tokens: dict[str, str], fuzzed_app: Server) -> None:
    """Stateful: sequences that feed one answer's ids into the next call (the links schemathesis
    infers: allocate → extend → release, join → position → cancel, book → update → cancel,
    tenant → token → revoke…), with the same checks as above."""
    token = tokens[principal]
    scenarios = 0

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            nonlocal scenarios
            scenarios += 1

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {
                "base_url": fuzzed_app.url,
                "headers": {"Authorization": f"Bearer {token}"},
                "timeout": 30,
            }

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(
                response,
                checks=[not_a_server_error, response_schema_conformance, problem_json_with_a_code],
            )

    for _ in range(20):
        try:
            Sequences.run(
                settings=settings(
                    max_examples=SCENARIOS - scenarios,
                    stateful_step_count=8,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                    phases=[Phase.generate],  # a failure is reported as found, not shrunk
                    database=None,
                )
            )
            return
        except FlakyStrategyDefinition:
            # The server's state changed what a replayed sequence drew (a token revoked, a
            # device taken): go on in a fresh session, as schemathesis' own runner does.
            if scenarios >= SCENARIOS:
                return
    pytest.fail(f"only {scenarios} of {SCENARIOS} scenarios ran")
