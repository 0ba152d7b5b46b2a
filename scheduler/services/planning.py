"""Placement plans over the live fleet: the translation from the fleet and the requests into
a ``PlacementProblem``, and the solve (off the event loop). Used by queue drains and the
dry-run endpoints; the single allocate keeps its vectorized fast path."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from placement import problem as p
from placement.arrays import build_fleet_arrays
from placement.explain import why_unsatisfiable
from placement.plan import PlacementPlan, SolverParams
from placement.problem import MAX_PRIORITY, Strategy
from scheduler.domain.errors import Forbidden, Unsatisfiable
from scheduler.domain.fleet import Device, Node
from scheduler.domain.identity import Principal
from scheduler.domain.resources import DeviceRequirements
from scheduler.services.ports import UnitOfWork, UnitOfWorkFactory

PlacementSolver = Callable[[p.PlacementProblem, SolverParams], PlacementPlan]


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """One request to place: what it needs, how much it weighs, whose it is."""

    id: Hashable
    requirements: DeviceRequirements
    priority: int = 1
    tenant: str = ""
    anti_affinity_group: str | None = None


def weights(priorities: Sequence[float]) -> list[int]:
    """Queue priorities as solver weights in ``[1, MAX_PRIORITY]``, proportional, so that a
    higher-priority request always outweighs a lower one it competes with."""
    top = max(priorities, default=1.0)
    if top <= 0:
        return [1 for _ in priorities]
    return [max(1, min(MAX_PRIORITY, round(pr / top * MAX_PRIORITY))) for pr in priorities]


def build_problem(
    nodes: Sequence[Node], devices: Sequence[Device], requests: Sequence[PlanRequest]
) -> p.PlacementProblem:
    """The fleet and the requests as the optimizer's values (devices of every state: the
    leased ones load their nodes)."""
    return p.PlacementProblem(
        nodes=tuple(
            p.Node(
                id=n.id,
                labels=dict(n.labels),
                taints=tuple(p.Taint(t.key, t.value, t.effect) for t in n.taints),
                status=n.status.value,
                capacity=(
                    n.capacity.resources.cpu_cores,
                    float(n.capacity.resources.memory_mb),
                    float(n.capacity.resources.storage_mb),
                ),
            )
            for n in nodes
        ),
        devices=tuple(
            p.Device(
                id=d.id,
                node=d.node_id,
                capacity=(
                    d.spec.resources.cpu_cores,
                    float(d.spec.resources.memory_mb),
                    float(d.spec.resources.storage_mb),
                ),
                android_version=d.spec.android_version,
                labels=dict(d.spec.labels),
                state=d.status.value,
            )
            for d in devices
        ),
        requests=tuple(
            p.Request(
                id=r.id,
                minimum=(
                    r.requirements.min_cpu,
                    float(r.requirements.min_memory_mb),
                    float(r.requirements.min_storage_mb),
                ),
                android_version=r.requirements.android_version,
                selector=dict(r.requirements.labels),
                tolerations=tuple(p.Toleration(t.key, t.value) for t in r.requirements.tolerations),
                priority=r.priority,
                tenant=r.tenant,
                anti_affinity_group=r.anti_affinity_group,
            )
            for r in requests
        ),
    )


async def check_satisfiable(uow: UnitOfWork, requirements: DeviceRequirements) -> None:
    """Inside the caller's transaction: refuse a request that no device of the fleet could
    ever serve, whatever the devices' states (it would only wait for nothing). One read of
    the nodes and the fleet's distinct device shapes.

    Raises:
        Unsatisfiable: naming the constraint and the best the fleet offers.
    """
    nodes = await uow.nodes.list()
    shapes = await uow.devices.shapes()
    problem = build_problem(nodes, shapes, [PlanRequest(0, requirements)])
    verdict = why_unsatisfiable(build_fleet_arrays(problem), problem.requests[0])
    if verdict is not None:
        binding, reason = verdict
        raise Unsatisfiable(reason, binding.value)


@dataclass(frozen=True, slots=True)
class FleetView:
    """The fleet as a plan sees it: nodes, devices of every state, the placement strategy."""

    nodes: list[Node]
    devices: list[Device]
    strategy: Strategy
    #: The active strategy's (fit, balance, node) points; ``None``: its type's defaults.
    weights: tuple[int, int, int] | None = None


async def read_fleet(uow: UnitOfWork) -> FleetView:
    """Inside the caller's transaction: what ``plan`` needs to know about the fleet."""
    return FleetView(
        await uow.nodes.list(),
        await uow.devices.occupying(),
        Strategy(await uow.config.strategy()),
        await uow.config.strategy_weights(),
    )


async def plan(
    fleet: FleetView,
    requests: Sequence[PlanRequest],
    *,
    solver: PlacementSolver,
    strategy: Strategy | None = None,
    max_time_seconds: float = 0.5,
) -> PlacementPlan:
    """A plan for ``requests`` over ``fleet``; nothing is allocated. The solve runs in a
    worker thread so the event loop keeps serving (hold no transaction meanwhile)."""
    problem = build_problem(fleet.nodes, fleet.devices, requests)
    # The active strategy's weights, unless the caller asks for another type.
    weights = fleet.weights if strategy in (None, fleet.strategy) else None
    params = SolverParams(
        max_time_seconds=max_time_seconds, strategy=strategy or fleet.strategy, weights=weights
    )
    return await asyncio.to_thread(solver, problem, params)


#: What a dry run may cost a caller who is not an admin: requests planned and solver time.
USER_DRY_RUN_REQUESTS = 100
USER_DRY_RUN_SECONDS = 1.0


async def dry_run(
    uow_factory: UnitOfWorkFactory,
    principal: Principal,
    requests: Sequence[PlanRequest],
    *,
    solver: PlacementSolver,
    strategy: Strategy | None = None,
    max_time_seconds: float = 0.5,
) -> PlacementPlan:
    """What the optimizer would do for ``requests`` now, with its reasons.

    Raises:
        Forbidden: a caller who is not an admin asked for more than 100 requests or 1 s.
    """
    if not principal.is_admin and (
        len(requests) > USER_DRY_RUN_REQUESTS or max_time_seconds > USER_DRY_RUN_SECONDS
    ):
        raise Forbidden(
            f"a dry run of a non-admin token plans at most {USER_DRY_RUN_REQUESTS} requests"
            f" for at most {USER_DRY_RUN_SECONDS:g} s"
        )
    async with uow_factory() as uow:
        fleet = await read_fleet(uow)
    return await plan(
        fleet, requests, solver=solver, strategy=strategy, max_time_seconds=max_time_seconds
    )
