"""Routes send commands down the one command path and render what comes back: a result, or
a stored result replayed for a retried ``Idempotency-Key`` (marked ``Idempotent-Replayed``)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel

from scheduler.bootstrap import Services
from scheduler.domain.identity import Principal
from scheduler.services.command_path import Handled

REPLAYED_HEADER = "Idempotent-Replayed"


async def handle(
    services: Services, command: object, principal: Principal, key: str | None
) -> Handled[Any]:
    """Run ``command`` on the command path (once per key)."""
    return await services.commands.handle(command, principal, key)


def reply(handled: Handled[Any], body: BaseModel, status_code: int = 200) -> Response:
    """``body`` as JSON, serialized once by pydantic."""
    headers = {REPLAYED_HEADER: "true"} if handled.replayed else None
    return Response(
        body.model_dump_json(),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )
