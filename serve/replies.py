"""How routes render what the command path (``services.commands.handle``) gives back: a
result, or a stored result replayed for a retried ``Idempotency-Key`` (marked
``Idempotent-Replayed``)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel

from scheduler.services.command_path import Handled

REPLAYED_HEADER = "Idempotent-Replayed"


def reply(handled: Handled[Any], body: BaseModel, status_code: int = 200) -> Response:
    """``body`` as JSON, serialized once by pydantic."""
    headers = {REPLAYED_HEADER: "true"} if handled.replayed else None
    return Response(
        body.model_dump_json(),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )
