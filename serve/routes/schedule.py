"""Dry runs: what the optimizer would do for a request or a batch, with its reasons.
Nothing is allocated."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from placement.problem import Strategy
from scheduler.domain.errors import InvalidRequest
from scheduler.services.planning import PlanRequest, dry_run
from serve.deps import PrincipalDep, ServicesDep
from serve.schemas import PreferredSpecs, ScheduleBatchIn, ScheduleItem, plan_out

router = APIRouter(prefix="/scheduler/schedule", tags=["schedule"])


def _strategy(name: str | None) -> Strategy | None:
    """Raises:
    InvalidRequest: no such strategy.
    """
    if name is None:
        return None
    try:
        return Strategy(name)
    except ValueError:
        raise InvalidRequest(f"strategy must be one of: {', '.join(Strategy)}") from None


async def _plan(body: ScheduleBatchIn, principal: Any, services: Any) -> dict[str, Any]:
    requests = [
        PlanRequest(
            index,
            (item.preferredSpecs or PreferredSpecs()).requirements(),
            item.priority,
            str(principal.tenant_id),
            item.antiAffinityGroup,
        )
        for index, item in enumerate(body.requests)
    ]
    assert services.config.solver is not None
    plan = await dry_run(
        services.uow,
        principal,
        requests,
        solver=services.config.solver,
        strategy=_strategy(body.strategy),
        max_time_seconds=body.maxTimeSeconds,
    )
    return plan_out(plan)


@router.post("")
async def schedule_one(
    body: ScheduleItem, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    """Where one request would go and why (or why it would not)."""
    return await _plan(ScheduleBatchIn(requests=[body], maxTimeSeconds=0.5), principal, services)


@router.post("/batch")
async def schedule_batch(
    body: ScheduleBatchIn, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    """One plan for the whole batch: priority-weighted placements first, then the strategy."""
    return await _plan(body, principal, services)
