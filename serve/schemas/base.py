"""The shared ground of the API's bodies: strict request bodies, response models, problems."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from scheduler.domain import limits
from scheduler.domain.errors import InvalidRequest

Name = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
UserId = Field(min_length=1, max_length=200)
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=limits.MAX_LABEL_KEY)]
LabelValue = Annotated[str, StringConstraints(max_length=limits.MAX_LABEL_VALUE)]
#: Labels in a request: keys ≤ 63 characters, values ≤ 253 (as Kubernetes bounds them).
Labels = dict[LabelKey, LabelValue]
#: At most 64 labels on anything, so a request body stays small.
LabelsField = Field(default_factory=dict, max_length=limits.MAX_LABELS)


def _nul_at(value: Any, path: str) -> str | None:
    """Where in a raw JSON value a string (or a key) holds a NUL character."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return where
            found = _nul_at(item, where)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_at(item, f"{path}[{index}]")
            if found:
                return found
    return None


class Body(BaseModel):
    """Request bodies reject unknown fields (a misspelt field is an error, not a no-op),
    non-finite numbers, and NUL characters in any string (PostgreSQL cannot store them)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        where = _nul_at(data, "")
        if where is not None:
            raise ValueError(f"{where or 'value'}: NUL characters are not allowed")
        return data


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CountOut(Out):
    count: int


class Problem(Out):
    """An ``application/problem+json`` error body."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None


class CancelIn(Body):
    reason: str | None = Field(default=None, max_length=500)


#: A ``key:value`` query filter (FastAPI copies list defaults, so ``[]`` defaults are safe).
LabelFilter = Annotated[
    str, StringConstraints(max_length=limits.MAX_LABEL_KEY + 1 + limits.MAX_LABEL_VALUE)
]


def parse_labels(labels: list[str]) -> dict[str, str]:
    """Raises:
    InvalidRequest: a label is not ``key:value``.
    """
    parsed = {}
    for label in labels:
        key, sep, value = label.partition(":")
        if not sep or not key:
            raise InvalidRequest(f"label filter {label!r} must be key:value")
        parsed[key] = value
    return parsed
