"""``create_app(services)``: the FastAPI application, plain and testable without Ray."""

from __future__ import annotations

from fastapi import FastAPI

from scheduler.bootstrap import Services
from serve.auth import BearerAuthMiddleware
from serve.cloudphone import cluster as console_cluster
from serve.cloudphone import nodes as console_nodes
from serve.cloudphone import strategies as console_strategies
from serve.cloudphone.envelope import ConsoleEnvelopeMiddleware
from serve.errors import install_error_handlers
from serve.request_limits import RequestLimitsMiddleware
from serve.routes import (
    admin,
    allocations,
    batch,
    config,
    devices,
    health,
    jobs,
    nodes,
    operations,
    ops,
    queue,
    rebalance,
    reservations,
    schedule,
    stats,
    strategies,
)


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="PhoneFleet",
        version="0.1.0",
        description="Allocation scheduler for cloud-phone fleets.",
    )
    app.state.services = services
    install_error_handlers(app)
    # The last added runs first: the console's envelope (around every answer under
    # /cloudphone, refusals included), authentication, then the request limits.
    app.add_middleware(RequestLimitsMiddleware)
    app.add_middleware(BearerAuthMiddleware, services=services)
    app.add_middleware(ConsoleEnvelopeMiddleware)
    for router in (
        health.router,
        admin.router,
        stats.router,  # before nodes: its /scheduler/nodes/stats/summary
        nodes.router,
        operations.router,
        devices.router,
        batch.router,  # before allocations: its /{allocation_id} routes
        allocations.router,
        queue.router,
        config.router,
        strategies.router,
        schedule.router,
        reservations.router,
        jobs.router,
        rebalance.router,
        ops.router,
        console_nodes.router,
        console_cluster.router,
        console_strategies.router,
    ):
        app.include_router(router)
    return app
