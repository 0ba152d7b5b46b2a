"""The servers and the throw-away database a benchmark run works on.

PostgreSQL comes from ``PHONEFLEET_BENCH_DATABASE_URL`` (default: the local ``test`` server)
and Redis from ``PHONEFLEET_BENCH_REDIS_URL`` (default: the local Redis); a server that does
not answer is replaced by the embedded one (``scheduler.cli.embedded_servers``) in the
run's temporary folder. Each run creates its own database, migrates it from empty with
Alembic, and drops it at the end.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import redis
from psycopg import sql

from scheduler.adapters.migrations import upgrade_to_head
from scheduler.cli.cluster_ports import ClusterPorts

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DATABASE_URL_ENV = "PHONEFLEET_BENCH_DATABASE_URL"
REDIS_URL_ENV = "PHONEFLEET_BENCH_REDIS_URL"


@dataclass(frozen=True)
class ServerUrls:
    """Where the run's PostgreSQL and Redis are, and which of them are embedded."""

    postgres: str  # libpq URL of a database on the server we may connect to
    redis: str
    embedded: tuple[str, ...] = ()


def libpq_url(url: str) -> str:
    """``postgresql://…`` from any SQLAlchemy-style PostgreSQL URL."""
    return "postgresql://" + url.split("://", 1)[1]


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` on the same server."""
    return urlsplit(url)._replace(path="/" + name).geturl()


def _postgres_answers(url: str) -> bool:
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def servers(work_dir: Path, ports: ClusterPorts) -> Iterator[ServerUrls]:
    """The configured servers, with embedded ones standing in for any that do not answer."""
    postgres = os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL
    redis_url = os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL
    embedded: list[str] = []
    folder = work_dir / "embedded"
    try:
        if not _postgres_answers(postgres):
            from scheduler.cli.embedded_postgres import start_embedded_postgres

            postgres = libpq_url(start_embedded_postgres(folder, port=ports.postgres))
            embedded.append("postgres")
        if not _redis_answers(redis_url):
            from scheduler.cli.embedded_redis import start_embedded_redis

            redis_url = start_embedded_redis(folder, ports.redis)
            embedded.append("redis")
        yield ServerUrls(libpq_url(postgres), redis_url, tuple(embedded))
    finally:
        if embedded:
            from scheduler.cli.embedded_servers import stop_embedded_servers

            stop_embedded_servers(folder)


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new database on the server of ``server_url``, migrated to head; dropped on exit."""
    name = f"phonefleet_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(server_url, name)
    try:
        upgrade_to_head(url.replace("postgresql://", "postgresql+psycopg://", 1))
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def forget_stream(url: str, stream: str) -> None:
    """Delete a run's events stream from the Redis of ``url``."""
    client = redis.Redis.from_url(url)
    try:
        client.delete(stream)
    finally:
        client.close()
