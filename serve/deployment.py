"""The Ray Serve application: one FastAPI ingress deployment, built on each replica.

``app_builder(args)`` is the import path for ``serve run`` / ``serve deploy``
(``serve.deployment:app_builder``). Each replica opens its own database pool and Redis
client once, in its constructor, and serves the plain ``create_app`` FastAPI app; requests
take at most one actor hop (a fire-and-forget reset after a release).
"""

from __future__ import annotations

import logging
from typing import Any

from ray import serve
from ray.serve import Application

from actors.metrics import RequestMetrics
from actors.node_actor import RayDeviceLifecycle
from actors.queue_actor import RayQueueDispatcher
from scheduler.bootstrap import Services, build_services
from scheduler.config import Settings, has_password
from serve.app import create_app
from serve.latency import LatencyMiddleware

SERVE_OPTIONS = ("num_replicas", "max_ongoing_requests")

log = logging.getLogger(__name__)


class PhoneFleetIngress:
    """A replica: its services, and the FastAPI app over them."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self._settings = Settings(**settings)
        self._services: Services = build_services(
            self._settings,
            RayDeviceLifecycle(self._settings),
            lambda changes: RayQueueDispatcher(self._settings, changes),
        )

    def __serve_build_asgi_app__(self) -> Any:
        app = create_app(self._services)
        app.add_middleware(LatencyMiddleware, observe=RequestMetrics().observe)
        return app

    async def __del__(self) -> None:
        await self._services.close()


def app_builder(args: dict[str, Any]) -> Application:
    """Build the application from ``args``: any ``Settings`` field (``database_url``,
    ``redis_url``, …) plus ``num_replicas`` and ``max_ongoing_requests``."""
    settings = {k: v for k, v in args.items() if k not in SERVE_OPTIONS}
    for url in ("database_url", "redis_url"):
        if has_password(str(settings.get(url) or "")):
            log.warning(
                "%s carries a password, which the deployed Serve config shows: leave it out"
                " and give %s instead",
                url,
                url.replace("_url", "_password_file"),
            )
    deployment = serve.deployment(
        name="PhoneFleetIngress",
        num_replicas=int(args.get("num_replicas", 1)),
        max_ongoing_requests=int(args.get("max_ongoing_requests", 256)),
        ray_actor_options={"num_cpus": 0},
    )(serve.ingress()(PhoneFleetIngress))
    return deployment.bind(Settings(**settings).for_workers())
