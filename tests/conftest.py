"""Session fixtures: a fresh database migrated from scratch, Redis, and the HTTP app.

``PHONEFLEET_TEST_DATABASE_URL`` / ``PHONEFLEET_TEST_REDIS_URL`` point the suite at real
servers (CI uses the machine's); without them the embedded PostgreSQL and Redis start in a
temporary folder. Each session creates its own database and event stream, so runs never
share state.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from scheduler.adapters.migrations import upgrade_to_head
from scheduler.bootstrap import Services, build_services
from scheduler.config import Settings
from scheduler.services.tenancy import ensure_admin_token
from serve.app import create_app

IN_CI = bool(os.environ.get("CI"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end tests run last: their Ray cluster (a session fixture) then never shares
    the machine's two cores with the timing-sensitive integration tests."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="session")
def server_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Base URLs of a PostgreSQL server and a Redis server for this session."""
    db_url = os.environ.get("PHONEFLEET_TEST_DATABASE_URL")
    redis_url = os.environ.get("PHONEFLEET_TEST_REDIS_URL")
    data_dir: Path | None = None
    if not db_url or not redis_url:
        from scheduler.cli.embedded_postgres import start_embedded_postgres
        from scheduler.cli.embedded_redis import start_embedded_redis

        data_dir = tmp_path_factory.mktemp("embedded")
        db_url = db_url or start_embedded_postgres(data_dir)
        redis_url = redis_url or start_embedded_redis(data_dir, 6391)
    yield db_url, redis_url
    if data_dir is not None:
        from scheduler.cli.embedded_servers import stop_embedded_servers

        stop_embedded_servers(data_dir)


@pytest.fixture(scope="session")
def database_url(server_urls: tuple[str, str]) -> Iterator[str]:
    """A database created for this session and migrated with Alembic from empty."""
    base = _plain(server_urls[0])
    name = f"phonefleet_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = base.rsplit("/", 1)[0] + "/" + name
    upgrade_to_head(url)
    yield url
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def settings(database_url: str, server_urls: tuple[str, str]) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=server_urls[1],
        events_stream=f"phonefleet:test:{uuid.uuid4().hex[:8]}:events",
        device_reset_seconds=0.05,
        token_cache_seconds=0.0,
        db_pool_size=20,
        # the suite's admin token sets up thousands of rows fast; the rate-limit tests give
        # their tenants limits of their own
        rate_limit_rps=100_000.0,
        rate_limit_burst=100_000,
    )


@pytest.fixture(scope="session")
async def services(settings: Settings) -> AsyncIterator[Services]:
    built = build_services(settings)
    yield built
    await built.redis.delete(settings.events_stream)
    await built.close()


@pytest.fixture(scope="session")
async def admin_token(services: Services) -> str:
    token = "pf_test_admin_" + uuid.uuid4().hex
    await ensure_admin_token(services.uow(), token, now=services.clock())
    return token


@pytest.fixture(scope="session")
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://phonefleet") as c:
        yield c
