"""Where the time of an allocate goes: the service in-process, over the real database.

The use cases run here without HTTP, one pair at a time, while the unit of work and the
repository methods on the request path are wrapped with ``perf_counter`` timers. The
wrapping is done at runtime, in this process only, and undone afterwards; nothing of the
project is changed. Each wrapped call adds a few microseconds, which the totals include.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np

from bench.request_path.pairs import Summary
from scheduler.adapters import sql_fleet
from scheduler.adapters.sql_fleet import SqlDeviceRepository
from scheduler.adapters.sql_jobs import SqlOutboxRepository
from scheduler.adapters.sql_leases import SqlAllocationRepository, SqlUsageRepository
from scheduler.adapters.sql_tenancy import SqlTenantRepository
from scheduler.adapters.sql_unit_of_work import Database, SqlUnitOfWork
from scheduler.bootstrap import Services, build_services
from scheduler.config import Settings
from scheduler.services import leases
from scheduler.services.commands import ReleaseAllocation
from serve.schemas import AllocateIn

T = TypeVar("T")
TOTAL = "total"


@dataclass(frozen=True)
class Step:
    """A function to time, under the first of ``names`` its owner has (the code moves; a
    step none of whose names exists is left out). A ``nested`` step runs inside another one
    and is not summed."""

    label: str
    owner: Any  # a class or a module
    names: tuple[str, ...]
    nested: bool = False

    @property
    def attribute(self) -> str | None:
        return next((name for name in self.names if hasattr(self.owner, name)), None)


STEPS = (
    Step("uow.__aenter__ (pool + pipeline)", SqlUnitOfWork, ("__aenter__",)),
    Step("  pool acquire", Database, ("acquire",), nested=True),
    Step("devices.placement_snapshot", SqlDeviceRepository, ("placement_snapshot",)),
    Step(
        "  rows → candidates (Python)",
        sql_fleet,
        ("class_candidates", "_candidates"),
        nested=True,
    ),
    Step("rank_best_fit (numpy)", leases, ("rank_best_fit",)),
    Step("allocations.grant", SqlAllocationRepository, ("grant",)),
    Step("allocations.get (lock)", SqlAllocationRepository, ("get",)),
    Step("allocations.end", SqlAllocationRepository, ("end",)),
    Step("usage.add", SqlUsageRepository, ("add",)),
    Step("tenants.refund", SqlTenantRepository, ("refund",)),
    Step("devices.transition", SqlDeviceRepository, ("transition",)),
    Step("outbox.add", SqlOutboxRepository, ("add",)),
    Step("uow.commit", SqlUnitOfWork, ("commit",)),
    Step("uow.__aexit__ (pipeline close + release)", SqlUnitOfWork, ("__aexit__",)),
)

_recording: ContextVar[dict[str, float] | None] = ContextVar("bench_step_times", default=None)


def _add(label: str, started: float) -> None:
    times = _recording.get()
    if times is not None:
        times[label] = times.get(label, 0.0) + time.perf_counter() - started


def _timed(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                _add(label, started)

        return timed_async

    @functools.wraps(function)
    def timed_sync(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _add(label, started)

    return timed_sync


@contextlib.contextmanager
def step_timers(steps: Sequence[Step]) -> Iterator[None]:
    """Wrap every step's function for the duration of the block, then put it back."""
    undo: list[tuple[Any, str, Any]] = []
    try:
        for step in steps:
            name = step.attribute
            if name is None:
                continue
            own = vars(step.owner).get(name)
            setattr(step.owner, name, _timed(step.label, getattr(step.owner, name)))
            undo.append((step.owner, name, own))
        yield
    finally:
        for owner, name, own in reversed(undo):
            if own is None:
                delattr(owner, name)
            else:
                setattr(owner, name, own)


async def _recorded(call: Awaitable[T]) -> tuple[T, dict[str, float]]:
    """Await ``call`` with its steps' times recorded; the whole call is under TOTAL."""
    times: dict[str, float] = {}
    token = _recording.set(times)
    started = time.perf_counter()
    try:
        result = await call
    finally:
        times[TOTAL] = time.perf_counter() - started
        _recording.reset(token)
    return result, times


@dataclass(frozen=True)
class StepFigure:
    label: str
    nested: bool
    allocate_p50_ms: float | None
    release_p50_ms: float | None


@dataclass(frozen=True)
class ProfileResult:
    """Per-step medians of the in-process service, and its whole allocate and release."""

    pairs: int
    allocate: Summary
    release: Summary
    steps: tuple[StepFigure, ...]
    allocate_unwrapped_p50_ms: float  # the use case's own Python: total minus the steps
    release_unwrapped_p50_ms: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _p50_ms(samples: Sequence[dict[str, float]], label: str) -> float | None:
    values = [s[label] for s in samples if label in s]
    return float(np.percentile(values, 50)) * 1000.0 if values else None


def _unwrapped_p50_ms(samples: Sequence[dict[str, float]]) -> float:
    top = [step.label for step in STEPS if not step.nested]
    rest = [s[TOTAL] - sum(s.get(label, 0.0) for label in top) for s in samples]
    return float(np.percentile(rest, 50)) * 1000.0


def _summarize(
    allocate: Sequence[dict[str, float]], release: Sequence[dict[str, float]]
) -> ProfileResult:
    return ProfileResult(
        pairs=len(allocate),
        allocate=Summary.of([s[TOTAL] for s in allocate]),
        release=Summary.of([s[TOTAL] for s in release]),
        steps=tuple(
            StepFigure(
                step.label, step.nested, _p50_ms(allocate, step.label), _p50_ms(release, step.label)
            )
            for step in STEPS
        ),
        allocate_unwrapped_p50_ms=_unwrapped_p50_ms(allocate),
        release_unwrapped_p50_ms=_unwrapped_p50_ms(release),
    )


async def _settle(services: Services) -> None:
    """Wait for the background work a release starts (device reset, queue drain), so it
    never overlaps the next timed call."""
    for name, owner in (("drain", services.lifecycle), ("idle", getattr(services, "queue", None))):
        wait = getattr(owner, name, None)
        if wait is not None:
            await wait()


async def _pair(services: Services, principal: Any) -> tuple[dict[str, float], dict[str, float]]:
    """One allocate and one release as the routes run them (down the command path), then
    their background work."""
    command = AllocateIn(durationMinutes=30).to_command()
    granted, allocate_times = await _recorded(services.commands.handle(command, principal))
    _, release_times = await _recorded(
        services.commands.handle(ReleaseAllocation(granted.result.allocation.id), principal)
    )
    await _settle(services)
    return allocate_times, release_times


async def profile_service(
    settings: Settings,
    user_token: str,
    pairs: int,
    warmup: int,
    on_pair: Callable[[], None],
) -> ProfileResult:
    """Time ``pairs`` sequential allocate+release pairs of the service, step by step."""
    services = build_services(settings)
    allocate: list[dict[str, float]] = []
    release: list[dict[str, float]] = []
    try:
        principal = (await services.authenticator.authenticate(user_token)).principal
        with step_timers(STEPS):
            for index in range(warmup + pairs):
                allocate_times, release_times = await _pair(services, principal)
                if index >= warmup:
                    allocate.append(allocate_times)
                    release.append(release_times)
                    on_pair()
    finally:
        await services.close()
    return _summarize(allocate, release)
