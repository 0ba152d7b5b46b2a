"""OpenAPI links: which call an answer's ids feed (allocate → release, join → cancel…), for
clients that follow them and for the stateful fuzzing in the tests."""

from __future__ import annotations

from typing import Any


def link_to(
    method: str,
    path: str,
    *,
    parameters: dict[str, str] | None = None,
    body: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A link to the operation ``method path``, its parameters and body taken from the answer
    (``$response.body#/id``)."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    link: dict[str, Any] = {"operationRef": f"#/paths/{pointer}/{method.lower()}"}
    if parameters:
        link["parameters"] = parameters
    if body:
        link["requestBody"] = body
    return link


def answer_links(status: int, **links: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route whose ``status`` answer has these links."""
    return {status: {"links": links}}


def by_id(field: str, parameter: str) -> dict[str, str]:
    return {parameter: f"$response.body#/{field}"}
