"""The console's strategy calls (#3, #4, #11, #13–#15 of the platform contract): the native
catalogue, exactly one strategy active."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response

from scheduler.bootstrap import Services
from scheduler.domain.identity import Principal
from scheduler.services.strategy_catalogue import ActivateStrategy, DeleteStrategy
from serve.cloudphone.bodies import ConsoleStrategyIn, ConsoleStrategyPatchIn
from serve.cloudphone.nodes import Page, PageSize
from serve.cloudphone.views import ConsoleActiveStrategy, ConsolePage, ConsoleStrategy, render
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.routes import strategies as native
from serve.schemas.strategies import StrategyDefinitionOut

router = APIRouter(
    prefix="/cloudphone/scheduler/strategies", tags=["platform console"], include_in_schema=False
)


async def _handled(
    services: Services, principal: Principal, command: object, key: str | None
) -> ConsoleStrategy:
    handled = await services.commands.handle(command, principal, key)
    return ConsoleStrategy.of(StrategyDefinitionOut.of(handled.result))


@router.get("")
async def list_strategies(
    principal: PrincipalDep,
    services: ServicesDep,
    page: Page = 1,
    pageSize: PageSize = 100,
) -> Response:
    every = [ConsoleStrategy.of(s) for s in await native.list_strategies(principal, services)]
    return render(ConsolePage.cut(every, page, pageSize))


@router.get("/active")
async def active_strategy(principal: PrincipalDep, services: ServicesDep) -> Response:
    active = await native.active_strategy(principal, services)
    return render(ConsoleActiveStrategy.of(active))


@router.post("", status_code=201)
async def create_strategy(
    body: ConsoleStrategyIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    return render(await _handled(services, principal, body.to_command(), key), 201)


@router.put("/{strategy_id}")
async def update_strategy(
    strategy_id: uuid.UUID,
    body: ConsoleStrategyPatchIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """A partial strategy: the fields given replace the current ones."""
    current = await native.get_strategy(strategy_id, principal, services)
    return render(await _handled(services, principal, body.over(current), key))


@router.delete("/{strategy_id}")
async def delete_strategy(
    strategy_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    """409 ``strategy_active`` for the active one."""
    return render(await _handled(services, principal, DeleteStrategy(strategy_id), key))


@router.post("/{strategy_id}/activate")
async def activate_strategy(
    strategy_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    return render(await _handled(services, principal, ActivateStrategy(strategy_id), key))
