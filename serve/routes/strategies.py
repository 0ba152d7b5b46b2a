"""The strategy catalogue: named placement strategies, exactly one active (reads for every
caller, changes for admins). ``POST /scheduler/strategy`` activates a type's built-in one."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response

from scheduler.services import strategy_catalogue
from scheduler.services.strategy_catalogue import ActivateStrategy, DeleteStrategy
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.replies import reply
from serve.routes.links import answer_links, by_id, link_to
from serve.schemas.strategies import (
    ActivationOut,
    ActiveStrategyOut,
    StrategyDefinitionIn,
    StrategyDefinitionOut,
)

router = APIRouter(prefix="/scheduler/strategies", tags=["strategies"])

STRATEGY = by_id("id", "strategy_id")


@router.get("", response_model=list[StrategyDefinitionOut])
async def list_strategies(
    principal: PrincipalDep, services: ServicesDep
) -> list[StrategyDefinitionOut]:
    return [
        StrategyDefinitionOut.of(s)
        for s in await strategy_catalogue.list_strategies(services.uow())
    ]


@router.post(
    "",
    status_code=201,
    response_model=StrategyDefinitionOut,
    responses=answer_links(
        201,
        GetStrategy=link_to("GET", "/scheduler/strategies/{strategy_id}", parameters=STRATEGY),
        ActivateStrategy=link_to(
            "POST", "/scheduler/strategies/{strategy_id}/activate", parameters=STRATEGY
        ),
    ),
)
async def create_strategy(
    body: StrategyDefinitionIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    handled = await services.commands.handle(body.to_command(), principal, key)
    return reply(handled, StrategyDefinitionOut.of(handled.result), 201)


@router.get("/active", response_model=ActiveStrategyOut)
async def active_strategy(principal: PrincipalDep, services: ServicesDep) -> ActiveStrategyOut:
    active, history = await strategy_catalogue.active_strategy(services.uow())
    return ActiveStrategyOut(
        **StrategyDefinitionOut.of(active).model_dump(),
        history=[ActivationOut.of(a) for a in history],
    )


@router.get("/{strategy_id}", response_model=StrategyDefinitionOut)
async def get_strategy(
    strategy_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep
) -> StrategyDefinitionOut:
    return StrategyDefinitionOut.of(
        await strategy_catalogue.get_strategy(services.uow(), strategy_id)
    )


@router.put("/{strategy_id}", response_model=StrategyDefinitionOut)
async def update_strategy(
    strategy_id: uuid.UUID,
    body: StrategyDefinitionIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    handled = await services.commands.handle(body.to_update(strategy_id), principal, key)
    return reply(handled, StrategyDefinitionOut.of(handled.result))


@router.delete("/{strategy_id}", response_model=StrategyDefinitionOut)
async def delete_strategy(
    strategy_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    handled = await services.commands.handle(DeleteStrategy(strategy_id), principal, key)
    return reply(handled, StrategyDefinitionOut.of(handled.result))


@router.post("/{strategy_id}/activate", response_model=StrategyDefinitionOut)
async def activate_strategy(
    strategy_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    handled = await services.commands.handle(ActivateStrategy(strategy_id), principal, key)
    return reply(handled, StrategyDefinitionOut.of(handled.result))
