"""Use cases of the run-time scheduler settings: the placement strategy."""

from __future__ import annotations

from datetime import datetime

from placement.problem import Strategy
from scheduler.domain import events
from scheduler.domain.errors import InvalidRequest
from scheduler.domain.identity import Principal, require_admin
from scheduler.services.ports import UnitOfWork


async def get_strategy(uow: UnitOfWork) -> Strategy:
    async with uow:
        return Strategy(await uow.config.strategy())


async def set_strategy(
    uow: UnitOfWork, principal: Principal, name: str, *, now: datetime
) -> Strategy:
    """Raises:
    Forbidden: the caller is not an admin.
    InvalidRequest: no such strategy.
    """
    require_admin(principal)
    try:
        strategy = Strategy(name)
    except ValueError:
        choices = ", ".join(s.value for s in Strategy)
        raise InvalidRequest(f"strategy must be one of: {choices}") from None
    async with uow:
        await uow.config.set_strategy(strategy.value, now)
        await uow.outbox.add(
            [events.Event(events.STRATEGY_CHANGED, "scheduler", {"strategy": strategy.value}, now)]
        )
        await uow.commit()
    return strategy
