"""How a process joins a PhoneFleet Ray cluster: token auth and the driver connection.

Token auth, the decision. Ray 2.60 turns token auth on for a new head as soon as
``~/.ray/auth_token`` exists (and any local ``ray.init()`` creates that file), so leaving it
to chance gives a cluster whose auth depends on history. Our heads always start with
``RAY_AUTH_MODE=token``: secure by default. The token is Ray's usual one — ``RAY_AUTH_TOKEN``,
else the file at ``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``, which
:func:`ensure_auth_token` creates (mode 0600) when none exists, because ``ray start`` refuses
to create it. Every client must then run with ``RAY_AUTH_MODE=token`` as well:
:func:`connect` sets it for our own drivers; ``phonefleet up`` prints :data:`AUTH_EXPORT_LINE`
for ``ray job submit`` / ``serve`` CLI use; the dashboard (also its JSON API) takes the token
as ``Authorization: Bearer <token>`` (:func:`auth_headers`), the ``X-Ray-Authorization``
header or the ``ray-authentication-token`` cookie. The Serve HTTP port itself has no Ray
auth; the app authenticates its own callers.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from pathlib import Path

from actors.names import NAMESPACE

AUTH_MODE_ENV = "RAY_AUTH_MODE"
AUTH_EXPORT_LINE = f"export {AUTH_MODE_ENV}=token"


def auth_token() -> str | None:
    """The token Ray clients would use: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token."""
    if token := os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return token
    path_env = os.environ.get("RAY_AUTH_TOKEN_PATH")
    path = Path(path_env) if path_env else Path.home() / ".ray" / "auth_token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def ensure_auth_token() -> str:
    """Return the Ray token, creating ``~/.ray/auth_token`` (0600) when there is none."""
    if token := auth_token():
        return token
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        raise RuntimeError("RAY_AUTH_TOKEN_PATH names a missing or empty file")
    path = Path.home() / ".ray" / "auth_token"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_hex(32)  # what `ray get-auth-token --generate` writes
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return token


def use_token_auth() -> None:
    """Make this process a token-auth Ray client unless ``RAY_AUTH_MODE`` says otherwise.

    Ray reads the mode into its config when ``ray`` is first imported; if that already
    happened, re-read it the way Ray's own ``_enable_token_auth`` does.
    """
    if os.environ.get(AUTH_MODE_ENV) is not None:
        return
    os.environ[AUTH_MODE_ENV] = "token"
    if "ray" in sys.modules:
        from ray._raylet import Config  # type: ignore[attr-defined]

        Config.initialize("")


def auth_headers() -> dict[str, str]:
    """Headers for the dashboard's HTTP API."""
    token = auth_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


def connect(address: str, *, namespace: str = NAMESPACE) -> None:
    """Connect this process to the cluster at ``address`` as a driver (idempotent), with
    ``RAY_AUTH_MODE=token`` unless the caller chose a mode."""
    use_token_auth()
    import ray

    if ray.is_initialized():
        return
    ray.init(
        address=address,
        namespace=namespace,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
