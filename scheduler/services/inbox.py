"""The inbox (issue 12 §3): a platform message applied exactly once. Its id is claimed in the
transaction of its effect (a redelivered or concurrent copy finds it applied and does
nothing); the transport acknowledges it only after that commit. A message the scheduler
refuses (a body that means nothing, a rule it breaks) is dead at once; one that fails for
another reason is retried, and dead after ``max_attempts``. The transports (RabbitMQ, a Redis
stream) only carry messages to ``Inbox.receive`` and do what its verdict says.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from scheduler.domain.errors import SchedulerError
from scheduler.domain.identity import SYSTEM
from scheduler.domain.inbox import (
    BillingSettled,
    BillingTrouble,
    DeviceTrouble,
    InboundAction,
    LimitTenant,
    LimitUser,
    NothingToDo,
    ReinstateUser,
    SuspendUser,
    decode_body,
    read_message,
)
from scheduler.services.command_path import TRANSIENT, CommandPath, Unit
from scheduler.services.device_health import fail_device, recover_device
from scheduler.services.ports import UnitOfWorkFactory
from scheduler.services.user_standing import (
    billing_settled,
    billing_trouble,
    limit_tenant,
    limit_user,
    reinstate_user,
    suspend_user,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ApplyInbound:
    message_id: str
    source: str
    routing_key: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class InboundApplied:
    message_id: str
    #: What it did, in words; for a copy of a message that ended before, ``duplicate``.
    outcome: str
    #: A copy of a message that was dead-lettered before: dead-letter it again.
    dead: bool = False


async def apply_inbound(command: ApplyInbound, unit: Unit) -> InboundApplied:
    """Claim the message and apply it, in the unit's transaction.

    Raises:
        InvalidRequest: the message means nothing (poison).
    """
    before = await unit.uow.inbox.claim(
        command.message_id, command.source, command.routing_key, unit.now
    )
    if before is not None:
        return InboundApplied(command.message_id, f"duplicate (already {before})", before == "dead")
    outcome = await _act(read_message(command.routing_key, command.body), unit)
    await unit.uow.inbox.applied(command.message_id, outcome, unit.now)
    return InboundApplied(command.message_id, outcome)


async def _act(action: InboundAction, unit: Unit) -> str:
    if isinstance(action, SuspendUser):
        return await suspend_user(unit, action)
    if isinstance(action, ReinstateUser):
        return await reinstate_user(unit, action)
    if isinstance(action, LimitUser):
        return await limit_user(unit, action)
    if isinstance(action, LimitTenant):
        return await limit_tenant(unit, action)
    if isinstance(action, BillingTrouble):
        return await billing_trouble(unit, action)
    if isinstance(action, BillingSettled):
        return await billing_settled(unit, action)
    if isinstance(action, DeviceTrouble):
        device = await unit.uow.devices.get(action.device_id)
        if device is None:
            return f"device {action.device_id} is not in this fleet"
        change = fail_device if action.failed else recover_device
        reported = await change(unit, device, action.reason)
        return f"device {action.device_id} {reported.status} ({len(reported.leases)} leases moved)"
    assert isinstance(action, NothingToDo)
    return action.why


class Verdict(StrEnum):
    #: Applied now or before: acknowledge.
    DONE = "done"
    #: Failed for now: deliver it again.
    RETRY = "retry"
    #: Never to be applied: dead-letter it (with the reason) and acknowledge.
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Received:
    verdict: Verdict
    #: The outcome, or why it failed.
    detail: str
    attempts: int = 1


#: What a transport hands each delivery to: ``Inbox.receive(message_id, source, key, body)``.
Receive = Callable[[str, str, str, bytes], Awaitable[Received]]


class Inbox:
    def __init__(
        self,
        commands: CommandPath,
        uow_factory: UnitOfWorkFactory,
        clock: Callable[[], datetime],
        *,
        max_attempts: int,
    ) -> None:
        self._commands = commands
        self._uow_factory = uow_factory
        self._clock = clock
        self._max_attempts = max_attempts

    async def receive(
        self, message_id: str, source: str, routing_key: str, body: bytes
    ) -> Received:
        """Apply one delivered message; what its transport is to do with it."""
        try:
            command = ApplyInbound(message_id, source, routing_key, decode_body(body))
            handled = await self._commands.handle(command, SYSTEM)
        except SchedulerError as refusal:
            if isinstance(refusal, TRANSIENT):
                return await self._failed(message_id, source, routing_key, refusal.detail, 0)
            return await self._failed(message_id, source, routing_key, refusal.detail, 1)
        except Exception as error:  # any other failure is retried, then dead
            logger.exception("inbox message %s failed", message_id)
            return await self._failed(message_id, source, routing_key, repr(error), 0)
        applied = handled.result
        return Received(Verdict.DEAD if applied.dead else Verdict.DONE, applied.outcome)

    async def _failed(
        self, message_id: str, source: str, routing_key: str, why: str, dead_after: int
    ) -> Received:
        """Count the attempt; dead after ``dead_after`` attempts (0: ``max_attempts``)."""
        async with self._uow_factory() as uow:
            attempts, dead = await uow.inbox.failed(
                message_id,
                source,
                routing_key,
                why,
                self._clock(),
                dead_after=dead_after or self._max_attempts,
            )
            await uow.commit()
        if attempts == 0:  # applied meanwhile by another delivery
            return Received(Verdict.DONE, "duplicate (already applied)")
        return Received(Verdict.DEAD if dead else Verdict.RETRY, why, attempts)
