"""Idempotency-Key for any operation: the first request with a key runs, every retry with
that key gets the first response back.

The key (per tenant and principal user) is claimed in its own committed transaction with
the request's fingerprint and no response ("in progress"); the operation then runs in its
own transactions, and its response (status and exact body) is stored on the key. A retry
that finds the response gets it; one that finds the key still in progress is told to come
back (``IdempotencyKeyInProgress``); one with another fingerprint is refused
(``IdempotencyKeyReused``). When the operation fails in a way worth retrying (it raised),
the claim is dropped so that a retry runs it afresh.

The single allocate keeps its own key handling inside its transaction
(``allocations.allocate_device``); both share the ``idempotency_keys`` table, and a key
used by one is refused by the other (their operations differ).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scheduler.domain.errors import Conflict, IdempotencyKeyReused
from scheduler.domain.identity import Principal
from scheduler.services.ports import StoredKey, UnitOfWork, UnitOfWorkFactory


class IdempotencyKeyInProgress(Conflict):
    """A request with this Idempotency-Key is still being processed; retry shortly."""

    code = "idempotency_key_in_progress"
    retry_after_seconds = 1


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response as it is replayed: status, media type and the exact body text."""

    status: int
    media_type: str
    content: str

    def to_record(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "content": self.content}

    @classmethod
    def from_record(cls, status: int, record: dict[str, Any]) -> StoredResponse:
        return cls(status, str(record["mediaType"]), str(record["content"]))


def request_fingerprint(method: str, path: str, body: Any) -> str:
    """A stable hash of a request: method, path and its JSON body in canonical form (keys
    sorted, no insignificant whitespace), so a retry matches however it is serialized."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


def replay_of(stored: StoredKey, operation: str, fingerprint: str) -> StoredResponse:
    """The first response, for a retry that found the key taken.

    Raises:
        IdempotencyKeyReused: the key was first used for another request or operation.
        IdempotencyKeyInProgress: the first request has not answered yet.
    """
    if stored.operation != operation or stored.request_hash != fingerprint:
        raise IdempotencyKeyReused()
    if stored.response_status is None or stored.response_body is None:
        raise IdempotencyKeyInProgress()
    return StoredResponse.from_record(stored.response_status, stored.response_body)


async def claim_key(
    uow: UnitOfWork,
    principal: Principal,
    key: str,
    *,
    operation: str,
    fingerprint: str,
    now: datetime,
) -> StoredKey | None:
    """Claim the key for this request, committed at once; ``None`` when claimed, else the
    row the first request left."""
    async with uow:
        stored = await uow.idempotency.claim(principal, key, operation, fingerprint, now)
        await uow.commit()
    return stored


async def store_response(
    uow: UnitOfWork, principal: Principal, key: str, response: StoredResponse
) -> None:
    async with uow:
        await uow.idempotency.store_response(principal, key, response.status, response.to_record())
        await uow.commit()


async def drop_claim(uow: UnitOfWork, principal: Principal, key: str) -> None:
    async with uow:
        await uow.idempotency.drop_claim(principal, key)
        await uow.commit()


async def _finish(step: Coroutine[Any, Any, None]) -> None:
    """Run a bookkeeping step to its end even if the request is cancelled meanwhile (a
    cancelled step would leave the key in progress for good)."""
    await asyncio.shield(asyncio.ensure_future(step))


async def run_once(
    uow_factory: UnitOfWorkFactory,
    principal: Principal,
    key: str,
    action: Callable[[], Awaitable[StoredResponse]],
    *,
    operation: str,
    fingerprint: str,
    now: datetime,
) -> tuple[StoredResponse, bool]:
    """Run ``action`` once per key: the response, and whether it is a replay.

    ``action`` returns every response worth keeping (answers and refusals alike) and raises
    for failures a retry should run again; those drop the claim and propagate.

    Raises:
        IdempotencyKeyReused: the key was first used for another request.
        IdempotencyKeyInProgress: the first request with the key is still running.
    """
    stored = await claim_key(
        uow_factory(), principal, key, operation=operation, fingerprint=fingerprint, now=now
    )
    if stored is not None:
        return replay_of(stored, operation, fingerprint), True
    try:
        response = await action()
    except BaseException:
        with contextlib.suppress(Exception):  # the operation's own error matters more
            await _finish(drop_claim(uow_factory(), principal, key))
        raise
    await _finish(store_response(uow_factory(), principal, key, response))
    return response, False
