"""Bodies of the dry-run scheduling endpoints, and the plan as JSON."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from serve.schemas.allocations import (
    PreferredSpecs,
)
from serve.schemas.base import (
    Body,
)


class ScheduleItem(Body):
    preferredSpecs: PreferredSpecs | None = None
    priority: int = Field(default=1, ge=1, le=1000)
    antiAffinityGroup: str | None = Field(default=None, min_length=1, max_length=128)


class ScheduleBatchIn(Body):
    requests: list[ScheduleItem] = Field(min_length=1, max_length=1000)
    strategy: str | None = Field(default=None, max_length=32)
    maxTimeSeconds: float = Field(default=1.0, gt=0, le=10)


def choice_out(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    return {
        "deviceId": str(choice.device_id),
        "nodeId": str(choice.node_id),
        "score": choice.score,
        "terms": dict(choice.terms),
    }


def plan_out(plan: Any) -> dict[str, Any]:
    """A placement plan as JSON: by request index, with explanations."""
    return {
        "assignments": [
            {
                "index": index,
                "deviceId": str(device),
                "explanation": {
                    "chosen": choice_out(plan.explanations[index].chosen),
                    "runnerUp": choice_out(plan.explanations[index].runner_up),
                    "runnerUpTakenBy": plan.explanations[index].runner_up_taken_by,
                }
                if index in plan.explanations
                else None,
            }
            for index, device in sorted(plan.assignments.items())
        ],
        "unplaced": [
            {
                "index": index,
                "binding": u.binding.value,
                "reason": u.reason,
                "unsatisfiable": u.unsatisfiable,
            }
            for index, u in sorted(plan.unplaced.items())
        ],
        "objective": plan.objective,
        "placedWeight": plan.placed_weight,
        "score": plan.score,
        "greedyObjective": plan.greedy_objective,
        "bestBound": plan.best_bound,
        "provenOptimal": plan.proven_optimal,
        "solver": plan.solver.value,
        "solveSeconds": round(plan.solve_seconds, 4),
        "notes": list(plan.notes),
    }
