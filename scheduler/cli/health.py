"""The checks of ``phonefleet status``: is each component up, and what does it say."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from actors.ray_client import auth_headers
from scheduler.config import redacted_url, with_password_from


def check_postgres(url: str | None, password_file: Path | None) -> tuple[bool, str]:
    if url is None:
        return False, "not configured and no embedded server running"
    import psycopg

    try:
        plain = with_password_from(url, password_file)
        plain = plain.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(plain, connect_timeout=3) as conn:
            version = conn.execute("SHOW server_version").fetchone()
    except RuntimeError as error:
        return False, str(error)
    except psycopg.Error as error:
        return False, f"{redacted_url(url)}: {str(error).strip().splitlines()[-1]}"
    return True, f"{redacted_url(url)} (PostgreSQL {version[0] if version else '?'})"


def check_redis(url: str | None, password_file: Path | None) -> tuple[bool, str]:
    if url is None:
        return False, "not configured and no embedded server running"
    import redis

    try:
        client = redis.Redis.from_url(
            with_password_from(url, password_file), socket_timeout=3, socket_connect_timeout=3
        )
        client.ping()
        client.close()
    except RuntimeError as error:
        return False, str(error)
    except redis.RedisError as error:
        return False, f"{redacted_url(url)}: {error}"
    return True, redacted_url(url)


def check_dashboard(url: str) -> tuple[bool, str]:
    import httpx

    try:
        response = httpx.get(f"{url}/api/version", headers=auth_headers(), timeout=3)
    except httpx.HTTPError as error:
        return False, f"{url}: {error!r}"
    return response.status_code == 200, f"{url} (HTTP {response.status_code})"


def check_http(url: str) -> tuple[bool, str]:
    import httpx

    try:
        response = httpx.get(url, timeout=3)
    except httpx.HTTPError as error:
        return False, f"{url}: {type(error).__name__}"
    return response.status_code == 200, f"{url} (HTTP {response.status_code})"


def check_node_actors(dashboard_url: str) -> tuple[bool | None, str]:
    """How many NodeActors run, and how many wait to be placed (their host's Ray node is not
    in the cluster, with ``node_actor_placement = "host"``): unknown (``None``) then."""
    from ray.util.state import list_actors

    try:
        actors = list_actors(
            address=dashboard_url,
            filters=[("class_name", "=", "NodeActor")],
            limit=10_000,
            raise_on_missing_output=False,
        )
    except Exception as error:  # the state API is down: say so, do not fail the report
        return None, f"state API: {type(error).__name__}"
    states = Counter(actor.state for actor in actors)
    alive = states.pop("ALIVE", 0)
    waiting = states.pop("PENDING_CREATION", 0) + states.pop("DEPENDENCIES_UNREADY", 0)
    restarting = states.pop("RESTARTING", 0)
    details = f"{alive} running"
    if waiting:
        details += f", {waiting} waiting for their host's Ray node"
    if restarting:
        details += f", {restarting} restarting"
    return (None if waiting or restarting else True), details
