"""The scheduler's settings: what placement, leases and the queue run with."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from scheduler.domain.allocations import MAX_DURATION_MINUTES, MIN_DURATION_MINUTES
from scheduler.domain.queueing import MAX_WAIT_MINUTES, MIN_QUEUE_DURATION_MINUTES
from scheduler.services import settings_admin
from serve.deps import PrincipalDep, ServicesDep
from serve.idempotency import IdempotentRoute
from serve.schemas import StrategyIn

router = APIRouter(route_class=IdempotentRoute, prefix="/scheduler", tags=["config"])


@router.get("/config")
async def get_config(principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    policy = services.queue_policy
    return {
        "strategy": (await settings_admin.get_strategy(services.uow())).value,
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
            "capPerTenant": services.queue_limits.per_tenant,
            "capTotal": services.queue_limits.total,
        },
        "deviceResetSeconds": services.settings.device_reset_seconds,
    }


@router.post("/strategy")
async def set_strategy(
    body: StrategyIn, principal: PrincipalDep, services: ServicesDep
) -> dict[str, str]:
    strategy = await settings_admin.set_strategy(
        services.uow(), principal, body.strategy, now=services.clock()
    )
    return {"strategy": strategy.value}
