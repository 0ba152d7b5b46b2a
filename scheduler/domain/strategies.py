"""The strategy catalogue: named placement strategies, each of a type (binpack, spread,
balanced, least_loaded) with the weights of its score terms; exactly one is active."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from placement.problem import Strategy
from placement.strategies import POINTS, SCALE
from scheduler.domain.errors import InvalidRequest

#: The weights a strategy's config may set: points of the optimizer's score terms
#: (``placement.strategies``), which sum to ``SCALE``.
WEIGHT_TERMS = ("fit", "balance", "node")


@dataclass(frozen=True, slots=True)
class StrategyDefinition:
    id: uuid.UUID
    name: str
    type: Strategy
    description: str
    weights: tuple[int, int, int]
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @property
    def config(self) -> dict[str, int]:
        return dict(zip(WEIGHT_TERMS, self.weights, strict=True))


@dataclass(frozen=True, slots=True)
class Activation:
    """One activation of the history: which strategy, of which type, when and by whom."""

    strategy_id: uuid.UUID | None
    name: str
    type: Strategy
    activated_at: datetime
    activated_by: str


def strategy_type(value: str) -> Strategy:
    """Raises:
    InvalidRequest: no such strategy type.
    """
    try:
        return Strategy(value)
    except ValueError:
        choices = ", ".join(s.value for s in Strategy)
        raise InvalidRequest(f"strategy type must be one of: {choices}") from None


def weights_of(kind: Strategy, config: Mapping[str, object]) -> tuple[int, int, int]:
    """The (fit, balance, node) points a config gives ``kind``: its terms override the
    type's defaults; together they must sum to ``SCALE``.

    Raises:
        InvalidRequest: an unknown term, a value that is not a whole number in
            ``[0, SCALE]``, balance points for a type other than ``balanced``, or points
            that do not sum to ``SCALE``.
    """
    unknown = sorted(set(config) - set(WEIGHT_TERMS))
    if unknown:
        raise InvalidRequest(f"unknown weight {unknown[0]!r}; weights: {', '.join(WEIGHT_TERMS)}")
    points = dict(zip(WEIGHT_TERMS, POINTS[kind], strict=True))
    for term, value in config.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SCALE:
            raise InvalidRequest(f"weight {term!r} must be a whole number from 0 to {SCALE}")
        points[term] = value
    if points["balance"] and kind is not Strategy.BALANCED:
        raise InvalidRequest("only a balanced strategy weighs the balance term")
    total = sum(points.values())
    if total != SCALE:
        raise InvalidRequest(f"the weights must sum to {SCALE}; they sum to {total}")
    return points["fit"], points["balance"], points["node"]
