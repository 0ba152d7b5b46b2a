"""What the CLI does as the operator, through this process's own services: register the
admin token, issue API tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from scheduler.domain.identity import Principal, Role

if TYPE_CHECKING:
    from scheduler.bootstrap import Services
    from scheduler.config import Settings

T = TypeVar("T")


def bootstrap_admin_token(settings: Settings, token: str) -> None:
    """Register ``token`` as an admin token of the system tenant (idempotent)."""
    from scheduler.services.tenancy import ensure_admin_token

    async def register(services: Services) -> None:
        await ensure_admin_token(services.uow(), token, now=services.clock())

    run_with_services(settings, register)


def run_with_services(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    """Run ``work`` against this process's own services, then close them."""
    import asyncio

    from scheduler.bootstrap import build_services

    async def run() -> T:
        services = build_services(settings)
        try:
            return await work(services)
        finally:
            await services.close()

    return asyncio.run(run())


def create_api_token(settings: Settings, *, tenant: str, user: str, role: Role) -> str:
    """Issue a token as the operator (who holds the database) would through the admin API.

    Raises the domain's ``SchedulerError`` (an unknown tenant, …)."""
    from scheduler.services.commands import CreateToken
    from scheduler.services.tenancy import ADMIN_USER, find_tenant

    async def issue(services: Services) -> str:
        found = await find_tenant(services.uow(), tenant)
        operator = Principal(found.id, ADMIN_USER, Role.ADMIN)
        handled = await services.commands.handle(CreateToken(found.id, user, role), operator)
        return str(handled.result.token)

    return run_with_services(settings, issue)
