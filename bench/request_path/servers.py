"""The two ways the service runs under test: Ray Serve on a local head, and plain uvicorn.

Both get the same ``Settings``: Serve as the application builder's arguments (and, like
``phonefleet up``, as ``PHONEFLEET_*`` variables in the head's environment, so node actors
see them too); uvicorn as ``PHONEFLEET_*`` variables of its process. Each context manager
stops exactly what it started, also on error or Ctrl-C: the Ray head through
``scheduler.cli.ray_nodes.stop_ray_node`` (never ``ray stop``), uvicorn by its pid.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from scheduler.cli.bring_up import app_args
from scheduler.cli.cluster_ports import LOOPBACK, ClusterPorts
from scheduler.cli.ray_head import start_head
from scheduler.cli.ray_nodes import stop_ray_node
from scheduler.cli.serve_app import APP_IMPORT_PATH, deploy_app
from scheduler.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STANDALONE_FACTORY = "serve.standalone:create_standalone_app"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


def phonefleet_env(settings: Settings) -> dict[str, str]:
    """The same Settings as ``PHONEFLEET_*`` environment variables (lists and maps as JSON,
    which is how pydantic-settings reads them)."""
    return {
        f"PHONEFLEET_{key.upper()}": value if isinstance(value, str) else json.dumps(value)
        for key, value in app_args(settings).items()
    }


# --------------------------------------------------------------------------- Ray Serve


def _quiet_ray() -> None:
    """Keep Ray's and Serve's INFO lines off the progress display."""
    import ray.serve  # noqa: F401  (sets its logger to INFO at import)

    for name in ("ray", "ray.serve"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _disconnect_driver() -> None:
    """Leave the cluster: the Serve app lives on, this process stops being a Ray driver."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


@contextlib.contextmanager
def serve_app(settings: Settings, data_dir: Path, http_port: int) -> Iterator[str]:
    """A Ray head of its own with the PhoneFleet Serve app; yields the Serve HTTP URL."""
    ports = ClusterPorts.from_http_port(http_port)
    try:
        head = start_head(data_dir, ports, env_extra=phonefleet_env(settings))
        _quiet_ray()
        url = deploy_app(head.address, ports, APP_IMPORT_PATH, app_args(settings))
        _disconnect_driver()
        yield url
    finally:
        with contextlib.suppress(Exception):
            _disconnect_driver()
        stop_ray_node(data_dir)


# --------------------------------------------------------------------------- uvicorn


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


def _uvicorn_command(port: int) -> list[str]:
    uvicorn = Path(sys.executable).parent / "uvicorn"
    return [
        str(uvicorn),
        "--factory",
        STANDALONE_FACTORY,
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--no-access-log",
    ]


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_file: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {process.returncode}:\n{_tail(log_file)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"uvicorn not ready after {READY_TIMEOUT_S:.0f}s:\n{_tail(log_file)}"
            )
        time.sleep(0.2)


def _tail(log_file: Path, lines: int = 20) -> str:
    return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn's graceful shutdown closes the pools), then SIGKILL."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5.0)


@contextlib.contextmanager
def uvicorn_app(settings: Settings, port: int, log_file: Path) -> Iterator[str]:
    """``uvicorn --factory serve.standalone:create_standalone_app`` as a child process."""
    if _port_taken(port):
        raise RuntimeError(f"port {port} is in use: pick another with --uvicorn-port")
    env = {**os.environ, **phonefleet_env(settings)}
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            _uvicorn_command(port),
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches only us; we stop it
        )
    url = f"http://{LOOPBACK}:{port}"
    try:
        _wait_ready(process, url + "/healthz", log_file)
        yield url
    finally:
        _stop(process)
