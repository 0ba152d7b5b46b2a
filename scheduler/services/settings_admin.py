"""Use cases of the run-time scheduler settings: the placement strategy."""

from __future__ import annotations

from placement.problem import Strategy
from scheduler.domain import events
from scheduler.domain.errors import InvalidRequest
from scheduler.domain.identity import require_admin
from scheduler.services.command_path import Unit
from scheduler.services.commands import SetStrategy, StrategySet
from scheduler.services.ports import UnitOfWork


async def get_strategy(uow: UnitOfWork) -> Strategy:
    async with uow:
        return Strategy(await uow.config.strategy())


async def set_strategy(command: SetStrategy, unit: Unit) -> StrategySet:
    """Raises:
    Forbidden: the caller is not an admin.
    InvalidRequest: no such strategy.
    """
    require_admin(unit.principal)
    try:
        strategy = Strategy(command.strategy)
    except ValueError:
        choices = ", ".join(s.value for s in Strategy)
        raise InvalidRequest(f"strategy must be one of: {choices}") from None
    await unit.uow.config.set_strategy(strategy.value, unit.now)
    unit.emit(events.StrategyChanged(occurred_at=unit.now, strategy=strategy.value))
    return StrategySet(strategy.value)
