"""The shared ground of the API's bodies: strict request bodies, response models, problems."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Name = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
UserId = Field(min_length=1, max_length=200)
Labels = dict[str, str]
#: At most 64 labels on anything, so a request body stays small.
LabelsField = Field(default_factory=dict, max_length=64)


class Body(BaseModel):
    """Request bodies reject unknown fields, so a misspelt field is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")


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
