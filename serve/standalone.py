"""PhoneFleet without Ray: the same FastAPI app under plain uvicorn, node agents in-process.

``uvicorn --factory serve.standalone:create_standalone_app`` — the yardstick the benchmark
compares Ray Serve against, and a single-process deployment for small fleets. Its node agent
serves every node and reconciles on a timer (a reset lost to an outage is still done); the
periodic jobs are not run here: run the housekeeper separately.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from scheduler.bootstrap import build_services
from scheduler.config import Settings
from scheduler.services.node_agent import InProcessDeviceLifecycle, reconcile_forever
from serve.app import create_app


def create_standalone_app() -> FastAPI:
    services = build_services(Settings())
    app = create_app(services)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        assert isinstance(services.lifecycle, InProcessDeviceLifecycle)
        settings = services.settings
        reconciling = asyncio.create_task(
            reconcile_forever(
                services.lifecycle.agent,
                settings.node_reconcile_seconds,
                settings.heartbeat_seconds,
            )
        )
        yield
        reconciling.cancel()
        await services.close()

    app.router.lifespan_context = lifespan
    return app
