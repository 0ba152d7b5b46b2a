"""The scheduler's settings: what placement, leases and the queue run with."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from scheduler.domain.allocations import MAX_DURATION_MINUTES, MIN_DURATION_MINUTES
from scheduler.domain.queueing import MAX_WAIT_MINUTES, MIN_QUEUE_DURATION_MINUTES
from scheduler.services import strategy_catalogue
from scheduler.services.commands import SetStrategy
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.replies import reply
from serve.schemas import StrategyIn, StrategyOut

router = APIRouter(prefix="/scheduler", tags=["config"])


@router.get("/config")
async def get_config(principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    config = services.config
    policy = config.queue_policy
    return {
        "strategy": (await strategy_catalogue.placement_strategy(services.uow())).value,
        "leases": {
            "minDurationMinutes": MIN_DURATION_MINUTES,
            "maxDurationMinutes": MAX_DURATION_MINUTES,
        },
        "queue": {
            "tierWeights": policy.tier_weights,
            "agingPerMinute": policy.aging_per_minute,
            "fairnessWeight": policy.fairness_weight,
            "starvationBoundMinutes": policy.starvation_bound_minutes,
            "minDurationMinutes": MIN_QUEUE_DURATION_MINUTES,
            "maxWaitMinutes": MAX_WAIT_MINUTES,
            "capPerTenant": config.queue_limits.per_tenant,
            "capTotal": config.queue_limits.total,
        },
        "deviceResetSeconds": config.reset.total_seconds(),
    }


@router.post("/strategy", response_model=StrategyOut)
async def set_strategy(
    body: StrategyIn, principal: PrincipalDep, services: ServicesDep, key: IdempotencyKeyDep
) -> Response:
    handled = await services.commands.handle(SetStrategy(body.strategy), principal, key)
    return reply(handled, StrategyOut(strategy=handled.result.strategy))
