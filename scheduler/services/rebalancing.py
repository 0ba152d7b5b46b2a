"""Rebalance: the optimizer plans which running leases to move (``placement.rebalance``),
a dry run returns that plan, and an executed one becomes a job the housekeeper runs move by
move, each with the failure-move rules (same size, Android version and labels, a ready
untainted node, no booking in the way), each in its own transaction with the job's progress.

A move whose lease ended, or whose target was taken since the plan, is skipped and recorded
on the job; it never stops the others.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from placement.plan import SolverParams
from placement.problem import DEVICE_AVAILABLE, PlacementProblem, Strategy
from placement.rebalance import Move, RebalancePlan, plan_rebalance
from scheduler.domain import events
from scheduler.domain.allocations import Allocation
from scheduler.domain.errors import InvalidRequest, StrategyNotFound
from scheduler.domain.fleet import Device, DeviceStatus, Node, NodeStatus
from scheduler.domain.identity import Principal, require_admin
from scheduler.domain.jobs import Job, JobError, JobStatus
from scheduler.domain.resources import DeviceRequirements
from scheduler.domain.strategies import strategy_type
from scheduler.services.command_path import Unit
from scheduler.services.device_health import relocate
from scheduler.services.planning import PlanRequest, build_problem
from scheduler.services.ports import UnitOfWork, UnitOfWorkFactory

#: The job kind of an executed rebalance.
REBALANCE_JOB = "rebalance"
#: Most moves one rebalance may plan.
MAX_MOVES = 1000
#: A lease ending sooner than this is not worth moving.
MIN_REMAINING = timedelta(minutes=5)
#: The reason moved leases carry (``allocation.moved``).
MOVE_REASON = "rebalance"
#: The planner's state of a free device no move may take: it occupies its node, is no load.
CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class RebalanceRequest:
    """``strategy``: a catalogue strategy's id or name, or a strategy type (default: the
    active strategy). ``labels``: only the nodes carrying them, and their leases (default:
    the whole fleet). ``max_seconds``: the optimizer's time."""

    max_moves: int
    strategy: str | None = None
    dry_run: bool = False
    max_seconds: float = 2.0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlannedMove:
    allocation_id: uuid.UUID
    from_device_id: uuid.UUID
    to_device_id: uuid.UUID
    from_node_id: uuid.UUID
    to_node_id: uuid.UUID
    gain: int
    reason: str


@dataclass(frozen=True, slots=True)
class RebalanceProposal:
    """The plan in the API's terms: the strategy it served, the objective (the strategy's
    score of the leases' placement) and the fleet's shape before and after, and the moves."""

    strategy: Strategy
    strategy_name: str
    max_moves: int
    leases_considered: int
    objective_before: int
    objective_after: int
    nodes_in_use_before: int
    nodes_in_use_after: int
    utilisation_spread_before: float
    utilisation_spread_after: float
    moves: tuple[PlannedMove, ...]
    solver: str
    #: CP-SAT proved no plan within the budget scores better.
    proven_optimal: bool
    solve_seconds: float


@dataclass(frozen=True, slots=True)
class StartRebalance:
    """Execute ``proposal``, planned for ``request``, as a job."""

    request: RebalanceRequest
    proposal: RebalanceProposal

    def asked(self) -> RebalanceRequest:
        """What identifies the command for its ``Idempotency-Key``: a retry plans again,
        and may plan otherwise, yet it is the same command."""
        return self.request


@dataclass(frozen=True, slots=True)
class RebalanceStarted:
    job: Job
    proposal: RebalanceProposal


async def propose_rebalance(
    uow_factory: UnitOfWorkFactory, principal: Principal, request: RebalanceRequest, now: datetime
) -> RebalanceProposal:
    """What a rebalance would move now, and why. Nothing is moved; the solve holds no
    transaction.

    Raises:
        Forbidden: the caller is not an admin.
        InvalidRequest: ``max_moves`` outside 0–1000, or a bad ``max_seconds``.
        StrategyNotFound: ``strategy`` names no catalogue strategy nor type.
    """
    require_admin(principal)
    if not 0 <= request.max_moves <= MAX_MOVES:
        raise InvalidRequest(f"maxMoves is between 0 and {MAX_MOVES}")
    if not 0.05 <= request.max_seconds <= 30:
        raise InvalidRequest("maxSeconds is between 0.05 and 30")
    async with uow_factory() as uow:
        strategy, name, weights = await _strategy(uow, request.strategy)
        nodes = await uow.nodes.list()
        devices = await uow.devices.occupying()
        leases = await uow.allocations.movable(now + MIN_REMAINING)
        booked = await uow.devices.booked()
    nodes = [n for n in nodes if request.labels.items() <= n.labels.items()]
    problem, current = _problem(nodes, devices, leases, booked)
    params = SolverParams(max_time_seconds=request.max_seconds, strategy=strategy, weights=weights)
    plan = await asyncio.to_thread(plan_rebalance, problem, current, params, request.max_moves)
    names = {n.id: n.name for n in nodes}
    return _proposal(plan, strategy, name, request.max_moves, len(current), names)


async def _strategy(
    uow: UnitOfWork, wanted: str | None
) -> tuple[Strategy, str, tuple[int, int, int] | None]:
    if wanted is None:
        active = await uow.strategies.active()
        assert active is not None, "the database keeps exactly one strategy active"
        return active.type, active.name, active.weights
    try:
        found = await uow.strategies.get(uuid.UUID(wanted))
    except ValueError:
        found = await uow.strategies.named(wanted)
    if found is not None:
        return found.type, found.name, found.weights
    try:
        kind = strategy_type(wanted)
    except InvalidRequest:
        raise StrategyNotFound(f"no strategy {wanted!r} (an id, a name or a type)") from None
    return kind, kind.value, None


def _problem(
    nodes: list[Node], devices: list[Device], leases: list[Allocation], booked: set[uuid.UUID]
) -> tuple[PlacementProblem, dict[uuid.UUID, uuid.UUID]]:
    """The fleet as the planner sees it: free devices that no move may take (on a tainted
    node, or booked) are left out as targets, and each lease asks for exactly its device's
    kind (size, Android version, its device's and node's labels)."""
    node_of = {n.id: n for n in nodes}
    devices = [d for d in devices if d.node_id in node_of]
    by_id = {d.id: d for d in devices}
    closed = {n.id for n in nodes if n.taints}
    # In scope, and as the fleet was read a moment before (a device added or a node changed
    # since is left out: a later rebalance sees it).
    leases = [
        lease
        for lease in leases
        if lease.device_id in by_id
        and by_id[lease.device_id].status in (DeviceStatus.ALLOCATED, DeviceStatus.AVAILABLE)
        and node_of[by_id[lease.device_id].node_id].status is NodeStatus.READY
    ]
    requests = []
    for lease in leases:
        device = by_id[lease.device_id]
        requirements = DeviceRequirements(
            min_cpu=device.spec.resources.cpu_cores,
            min_memory_mb=device.spec.resources.memory_mb,
            min_storage_mb=device.spec.resources.storage_mb,
            android_version=device.spec.android_version,
            labels={**node_of[device.node_id].labels, **device.spec.labels},
        )
        requests.append(PlanRequest(lease.id, requirements, tenant=str(lease.tenant_id)))
    problem = build_problem(nodes, devices, requests)
    problem = _close_targets(problem, closed, booked)
    return problem, {lease.id: lease.device_id for lease in leases}


def _close_targets(
    problem: PlacementProblem, closed_nodes: set[uuid.UUID], booked: set[uuid.UUID]
) -> PlacementProblem:
    return replace(
        problem,
        devices=tuple(
            replace(d, state=CLOSED)
            if d.state == DEVICE_AVAILABLE and (d.node in closed_nodes or d.id in booked)
            else d
            for d in problem.devices
        ),
    )


def _proposal(
    plan: RebalancePlan,
    strategy: Strategy,
    name: str,
    max_moves: int,
    considered: int,
    node_names: dict[uuid.UUID, str],
) -> RebalanceProposal:
    return RebalanceProposal(
        strategy=strategy,
        strategy_name=name,
        max_moves=max_moves,
        leases_considered=considered,
        objective_before=plan.objective_before,
        objective_after=plan.objective_after,
        nodes_in_use_before=plan.shape_before.nodes_in_use,
        nodes_in_use_after=plan.shape_after.nodes_in_use,
        utilisation_spread_before=plan.shape_before.utilisation_spread,
        utilisation_spread_after=plan.shape_after.utilisation_spread,
        moves=tuple(_planned(m, strategy, node_names) for m in plan.moves),
        solver=plan.solver,
        proven_optimal=plan.status == "OPTIMAL",
        solve_seconds=round(plan.solve_seconds, 4),
    )


def _planned(move: Move, strategy: Strategy, node_names: dict[uuid.UUID, str]) -> PlannedMove:
    source, target = node_names[move.from_node], node_names[move.to_node]  # type: ignore[index]
    terms = ", ".join(f"{name} {value:+d}" for name, value in move.terms if value)
    reason = (
        f"{strategy.value}: from {source} ({move.from_leased}/{move.from_devices} devices"
        f" leased) to {target} ({move.to_leased}/{move.to_devices}); score {move.gain:+d}"
        + (f" ({terms})" if terms else "")
    )
    return PlannedMove(
        allocation_id=move.request,  # type: ignore[arg-type]
        from_device_id=move.from_device,  # type: ignore[arg-type]
        to_device_id=move.to_device,  # type: ignore[arg-type]
        from_node_id=move.from_node,  # type: ignore[arg-type]
        to_node_id=move.to_node,  # type: ignore[arg-type]
        gain=move.gain,
        reason=reason,
    )


async def start_rebalance(command: StartRebalance, unit: Unit) -> RebalanceStarted:
    """Record the proposal as a job the housekeeper runs (``rebalance.started``); a plan
    without moves is a job done at once.

    Raises:
        Forbidden: the caller is not an admin.
    """
    require_admin(unit.principal)
    proposal, now = command.proposal, unit.now
    items = tuple(
        {
            "allocationId": str(m.allocation_id),
            "fromDeviceId": str(m.from_device_id),
            "toDeviceId": str(m.to_device_id),
            "fromNodeId": str(m.from_node_id),
            "toNodeId": str(m.to_node_id),
            "gain": m.gain,
            "reason": m.reason,
        }
        for m in proposal.moves
    )
    done = not items
    job = Job(
        id=uuid.uuid4(),
        kind=REBALANCE_JOB,
        status=JobStatus.SUCCEEDED if done else JobStatus.RUNNING,
        created_by=unit.principal.user_id,
        created_at=now,
        updated_at=now,
        params={
            "strategy": proposal.strategy_name,
            "maxMoves": proposal.max_moves,
            "objectiveBefore": proposal.objective_before,
            "objectiveAfterPlanned": proposal.objective_after,
        },
        items=items,
        total=len(items),
        counts={"moved": 0, "skipped": 0},
        result={"moved": 0, "skipped": 0} if done else None,
        finished_at=now if done else None,
    )
    await unit.uow.jobs.add(job)
    unit.emit(
        events.RebalanceStarted(
            occurred_at=now,
            job_id=job.id,
            strategy=proposal.strategy_name,
            moves=len(items),
            objective_before=proposal.objective_before,
            objective_after=proposal.objective_after,
        )
    )
    if done:
        unit.emit(events.RebalanceCompleted(occurred_at=now, job_id=job.id, moved=0, skipped=0))
    return RebalanceStarted(job, proposal)


async def step_rebalance(unit: Unit, job_id: uuid.UUID) -> bool:
    """Run the job's next move (the job row held, so two housekeepers never run one move
    twice), or finish it; whether moves are left."""
    uow, now = unit.uow, unit.now
    job = await uow.jobs.get(job_id, lock=True)
    if job is None or job.status is not JobStatus.RUNNING:
        return False
    counts = {"moved": 0, "skipped": 0, **job.counts}
    if job.done >= job.total:
        await uow.jobs.finish(
            job.id, status=JobStatus.SUCCEEDED, result=counts, message=None, now=now
        )
        unit.emit(
            events.RebalanceCompleted(
                occurred_at=now, job_id=job.id, moved=counts["moved"], skipped=counts["skipped"]
            )
        )
        return False
    item = job.items[job.done]
    error = await _move(unit, item)
    outcome = "skipped" if error else "moved"
    counts[outcome] += 1
    new_errors = [JobError(job.done, item["allocationId"], *error)] if error else []
    await uow.jobs.advance(job.id, done=job.done + 1, counts=counts, new_errors=new_errors, now=now)
    return True


async def _move(unit: Unit, item: Mapping[str, Any]) -> tuple[str, str] | None:
    """One planned move with the failure-move rules; the code and message of why it was
    skipped, or ``None`` when it moved."""
    uow = unit.uow
    lease_id = uuid.UUID(item["allocationId"])
    source = uuid.UUID(item["fromDeviceId"])
    leases = [
        a for a in await uow.allocations.lock_active_on(device_ids=[source]) if a.id == lease_id
    ]
    device = await uow.devices.get(source)
    if not leases or device is None:
        return "lease_gone", "the lease ended or moved since the plan"
    moved = await relocate(
        unit,
        leases[0],
        device,
        MOVE_REASON,
        revoke_if_stuck=False,
        only=uuid.UUID(item["toDeviceId"]),
    )
    if moved.moved_to is None:
        return "target_taken", "the target device is no longer free for this lease"
    return None


async def fail_job(unit: Unit, job_id: uuid.UUID, error: Exception) -> None:
    """End a running job as failed, with ``error`` as its message."""
    job = await unit.uow.jobs.get(job_id, lock=True)
    if job is None or job.status is not JobStatus.RUNNING:
        return
    counts = {"moved": 0, "skipped": 0, **job.counts}
    message = f"{type(error).__name__}: {error}"[:500]
    await unit.uow.jobs.finish(
        job.id, status=JobStatus.FAILED, result=counts, message=message, now=unit.now
    )
    unit.emit(
        events.RebalanceFailed(
            occurred_at=unit.now,
            job_id=job.id,
            moved=counts["moved"],
            skipped=counts["skipped"],
            message=message,
        )
    )


async def running_rebalances(uow: UnitOfWork, limit: int = 10) -> list[uuid.UUID]:
    """The rebalance jobs still running, oldest first."""
    return [job.id for job in await uow.jobs.running(REBALANCE_JOB, limit)]
