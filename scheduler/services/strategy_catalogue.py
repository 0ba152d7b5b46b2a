"""Use cases of the strategy catalogue: create, change, delete and activate named placement
strategies (exactly one active), and read them with the activation history. The active one's
type and weights are what placement uses (``POST /scheduler/strategy`` activates the built-in
strategy of a type)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

from placement.problem import Strategy
from scheduler.domain import events
from scheduler.domain.errors import StrategyActive, StrategyNotFound
from scheduler.domain.identity import require_admin
from scheduler.domain.strategies import (
    Activation,
    StrategyDefinition,
    strategy_type,
    weights_of,
)
from scheduler.services.command_path import Unit
from scheduler.services.commands import SetStrategy, StrategySet
from scheduler.services.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class CreateStrategy:
    name: str
    type: str
    description: str = ""
    config: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UpdateStrategy:
    """Replace a strategy's name, type, description and weights (``config`` over the type's
    default weights)."""

    strategy_id: uuid.UUID
    name: str
    type: str
    description: str = ""
    config: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeleteStrategy:
    strategy_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ActivateStrategy:
    strategy_id: uuid.UUID


async def create_strategy(command: CreateStrategy, unit: Unit) -> StrategyDefinition:
    """Raises:
    Forbidden: the caller is not an admin.
    InvalidRequest: an unknown type, or weights that are not valid for it.
    AlreadyExists: a strategy has that name.
    """
    require_admin(unit.principal)
    kind = strategy_type(command.type)
    strategy = StrategyDefinition(
        id=uuid.uuid4(),
        name=command.name,
        type=kind,
        description=command.description,
        weights=weights_of(kind, command.config),
        is_active=False,
        created_at=unit.now,
        updated_at=unit.now,
    )
    await unit.uow.strategies.add(strategy)
    unit.emit(_saved(strategy, unit))
    return strategy


async def update_strategy(command: UpdateStrategy, unit: Unit) -> StrategyDefinition:
    """Raises:
    Forbidden: the caller is not an admin.
    StrategyNotFound: no such strategy.
    InvalidRequest: an unknown type, or weights that are not valid for it.
    AlreadyExists: another strategy has that name.
    """
    require_admin(unit.principal)
    current = await _held(unit, command.strategy_id)
    kind = strategy_type(command.type)
    strategy = replace(
        current,
        name=command.name,
        type=kind,
        description=command.description,
        weights=weights_of(kind, command.config),
        updated_at=unit.now,
    )
    await unit.uow.strategies.update(strategy)
    unit.emit(_saved(strategy, unit))
    if strategy.is_active and strategy.type is not current.type:
        unit.emit(events.StrategyChanged(occurred_at=unit.now, strategy=strategy.type.value))
    return strategy


async def delete_strategy(command: DeleteStrategy, unit: Unit) -> StrategyDefinition:
    """Raises:
    Forbidden: the caller is not an admin.
    StrategyNotFound: no such strategy.
    StrategyActive: it is the active strategy (activate another first).
    """
    require_admin(unit.principal)
    strategy = await _held(unit, command.strategy_id)
    if strategy.is_active:
        raise StrategyActive("the active strategy cannot be deleted; activate another first")
    await unit.uow.strategies.delete(strategy.id)
    unit.emit(
        events.StrategyDeleted(occurred_at=unit.now, strategy_id=strategy.id, name=strategy.name)
    )
    return strategy


async def activate_strategy(command: ActivateStrategy, unit: Unit) -> StrategyDefinition:
    """Raises:
    Forbidden: the caller is not an admin.
    StrategyNotFound: no such strategy.
    """
    require_admin(unit.principal)
    strategy = await _held(unit, command.strategy_id)
    return await _activate(unit, strategy)


async def set_strategy(command: SetStrategy, unit: Unit) -> StrategySet:
    """Activate the catalogue's strategy named after a type (created with the type's
    default weights if it was deleted).

    Raises:
        Forbidden: the caller is not an admin.
        InvalidRequest: no such strategy type.
    """
    require_admin(unit.principal)
    kind = strategy_type(command.strategy)
    strategy = await unit.uow.strategies.named(kind.value)
    if strategy is None or strategy.type is not kind:
        name = kind.value if strategy is None else f"{kind.value}-{uuid.uuid4().hex[:8]}"
        strategy = await create_strategy(CreateStrategy(name, kind.value), unit)
    await _activate(unit, strategy)
    return StrategySet(kind.value)


async def _activate(unit: Unit, strategy: StrategyDefinition) -> StrategyDefinition:
    by = unit.principal.user_id
    await unit.uow.strategies.hold_settings()
    await unit.uow.strategies.activate(strategy.id, unit.now, by)
    unit.emit(
        events.StrategyActivated(
            occurred_at=unit.now,
            strategy_id=strategy.id,
            name=strategy.name,
            type=strategy.type.value,
            activated_by=by,
        ),
        events.StrategyChanged(occurred_at=unit.now, strategy=strategy.type.value),
    )
    return replace(strategy, is_active=True)


async def _held(unit: Unit, strategy_id: uuid.UUID) -> StrategyDefinition:
    """The strategy, its row held, after the settings row (the catalogue's lock order)."""
    await unit.uow.strategies.hold_settings()
    strategy = await unit.uow.strategies.get(strategy_id, lock=True)
    if strategy is None:
        raise StrategyNotFound()
    return strategy


def _saved(strategy: StrategyDefinition, unit: Unit) -> events.StrategySaved:
    return events.StrategySaved(
        occurred_at=unit.now,
        strategy_id=strategy.id,
        name=strategy.name,
        type=strategy.type.value,
        weights=list(strategy.weights),
    )


async def placement_strategy(uow: UnitOfWork) -> Strategy:
    """The active strategy's type."""
    async with uow:
        return Strategy(await uow.config.strategy())


async def list_strategies(uow: UnitOfWork) -> list[StrategyDefinition]:
    async with uow:
        return await uow.strategies.list()


async def get_strategy(uow: UnitOfWork, strategy_id: uuid.UUID) -> StrategyDefinition:
    """Raises:
    StrategyNotFound: no such strategy.
    """
    async with uow:
        strategy = await uow.strategies.get(strategy_id)
    if strategy is None:
        raise StrategyNotFound()
    return strategy


async def active_strategy(
    uow: UnitOfWork, *, history: int = 20
) -> tuple[StrategyDefinition, list[Activation]]:
    """The active strategy and the latest ``history`` activations, newest first."""
    async with uow:
        active = await uow.strategies.active()
        activations = await uow.strategies.activations(history)
    assert active is not None, "the database keeps exactly one strategy active"
    return active, activations
