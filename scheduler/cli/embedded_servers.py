"""Both embedded servers of a data folder at once, for ``phonefleet down`` and ``status``."""

from __future__ import annotations

from pathlib import Path

from scheduler.cli.embedded_postgres import embedded_postgres_url, stop_embedded_postgres
from scheduler.cli.embedded_redis import embedded_redis_url, stop_embedded_redis


def stop_embedded_servers(data_dir: Path) -> list[str]:
    """Stop the embedded Redis and PostgreSQL of ``data_dir``; describe what was stopped."""
    stopped = []
    if (pid := stop_embedded_redis(data_dir)) is not None:
        stopped.append(f"redis (pid {pid})")
    if (pid := stop_embedded_postgres(data_dir)) is not None:
        stopped.append(f"postgres (pid {pid})")
    return stopped


def embedded_status(data_dir: Path) -> dict[str, str | None]:
    """The URL of each embedded server of ``data_dir`` that is running, else ``None``."""
    return {"postgres": embedded_postgres_url(data_dir), "redis": embedded_redis_url(data_dir)}
