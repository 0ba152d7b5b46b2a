"""Bodies of the strategy catalogue."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from placement.strategies import SCALE
from scheduler.domain.strategies import Activation, StrategyDefinition
from scheduler.services.strategy_catalogue import CreateStrategy, UpdateStrategy
from serve.schemas.base import Body, Name, Out

StrategyType = Literal["binpack", "spread", "balanced", "least_loaded"]
#: Points of the optimizer's score terms; unset terms take the type's defaults, and all
#: three must sum to 1000 (``balance`` only for ``balanced``).
Weights = dict[Literal["fit", "balance", "node"], Annotated[int, Field(ge=0, le=SCALE)]]


class StrategyDefinitionIn(Body):
    name: str = Name
    type: StrategyType
    description: str = Field(default="", max_length=1000)
    config: Weights = Field(default_factory=dict, max_length=3)

    def to_command(self) -> CreateStrategy:
        return CreateStrategy(self.name, self.type, self.description, dict(self.config))

    def to_update(self, strategy_id: uuid.UUID) -> UpdateStrategy:
        return UpdateStrategy(
            strategy_id, self.name, self.type, self.description, dict(self.config)
        )


class StrategyDefinitionOut(Out):
    id: uuid.UUID
    name: str
    type: str
    description: str
    config: dict[str, int]
    isActive: bool
    createdAt: datetime
    updatedAt: datetime

    @classmethod
    def of(cls, s: StrategyDefinition) -> StrategyDefinitionOut:
        return cls(
            id=s.id,
            name=s.name,
            type=s.type.value,
            description=s.description,
            config=s.config,
            isActive=s.is_active,
            createdAt=s.created_at,
            updatedAt=s.updated_at,
        )


class ActivationOut(Out):
    strategyId: uuid.UUID | None
    name: str
    type: str
    activatedAt: datetime
    activatedBy: str

    @classmethod
    def of(cls, a: Activation) -> ActivationOut:
        return cls(
            strategyId=a.strategy_id,
            name=a.name,
            type=a.type.value,
            activatedAt=a.activated_at,
            activatedBy=a.activated_by,
        )


class ActiveStrategyOut(StrategyDefinitionOut):
    """The active strategy, with the latest activations (newest first)."""

    history: list[ActivationOut]
