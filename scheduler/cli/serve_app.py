"""The Serve app on a PhoneFleet cluster: deploy it, wait until it answers, remove it."""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from actors.ray_client import connect
from scheduler.cli.cluster_ports import LOOPBACK, ClusterPorts
from scheduler.cli.ray_nodes import SERVE_ENV

APP_NAME = "phonefleet"
APP_IMPORT_PATH = "serve.deployment:app_builder"


def deploy_app(
    address: str,
    ports: ClusterPorts,
    import_path: str = APP_IMPORT_PATH,
    args: Mapping[str, Any] | None = None,
    *,
    name: str = APP_NAME,
    route_prefix: str = "/",
    health_path: str | None = "/healthz",
    timeout_s: float = 180.0,
) -> str:
    """Deploy (or redeploy) the Serve app onto the cluster at ``address``; return its URL.

    ``import_path`` names an application builder ``f(args: dict) -> Application``. Waits
    until Serve reports the app RUNNING and, when ``health_path`` is set, until
    ``GET <url><health_path>`` answers 200 through the Serve HTTP port.
    """
    # Serve reads these at import, also in the driver; the head already has them.
    for key, value in {**SERVE_ENV, **ports.env()}.items():
        os.environ.setdefault(key, value)
    connect(address)
    from ray import serve

    serve.start(
        # one machine's cluster: one proxy, on the head (a second Ray node of this host, a
        # phone host's, would otherwise start one on the same port)
        proxy_location="HeadOnly",
        http_options={"host": LOOPBACK, "port": ports.http},
        grpc_options={"port": ports.grpc},
    )
    builder = _import_attr(import_path)
    serve.run(builder(dict(args or {})), name=name, route_prefix=route_prefix, blocking=False)
    url = f"http://{LOOPBACK}:{ports.http}"
    _wait_app_running(name, timeout_s)
    if health_path is not None:
        wait_http_ok(url + route_prefix.rstrip("/") + health_path, timeout_s)
    return url


def _import_attr(import_path: str) -> Callable[[dict[str, Any]], Any]:
    module_name, _, attr = import_path.partition(":")
    if not attr:
        module_name, _, attr = import_path.rpartition(".")
    builder: Callable[[dict[str, Any]], Any] = getattr(importlib.import_module(module_name), attr)
    return builder


def _wait_app_running(name: str, timeout_s: float) -> None:
    from ray import serve
    from ray.serve.schema import ApplicationStatus

    deadline = time.monotonic() + timeout_s
    while True:
        app = serve.status().applications.get(name)
        status = app.status if app is not None else None
        if status == ApplicationStatus.RUNNING:
            return
        if app is not None and status == ApplicationStatus.DEPLOY_FAILED:
            raise RuntimeError(f"Serve app {name!r} failed to deploy: {app.message}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"Serve app {name!r} not RUNNING after {timeout_s:.0f}s: {status}")
        time.sleep(0.5)


def wait_http_ok(url: str, timeout_s: float = 60.0) -> None:
    """Poll ``url`` until it answers 200 (HAProxy picks up new replicas within ~1 s)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while True:
        try:
            response = httpx.get(url, timeout=5.0)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as error:
            last = repr(error)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not healthy after {timeout_s:.0f}s: {last}")
        time.sleep(0.25)


def delete_app(address: str, name: str = APP_NAME) -> None:
    """Remove the Serve app (the head keeps running)."""
    connect(address)
    from ray import serve

    serve.delete(name)
