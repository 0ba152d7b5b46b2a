"""PhoneFleet without Ray: the same FastAPI app under plain uvicorn, node agents in-process.

``uvicorn --factory serve.standalone:create_standalone_app`` — the yardstick the benchmark
compares Ray Serve against, and a single-process deployment for small fleets. The periodic
jobs are not run here; run the housekeeper separately.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from scheduler.bootstrap import build_services
from scheduler.config import Settings
from serve.app import create_app


def create_standalone_app() -> FastAPI:
    services = build_services(Settings())
    app = create_app(services)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await services.close()

    app.router.lifespan_context = lifespan
    return app
