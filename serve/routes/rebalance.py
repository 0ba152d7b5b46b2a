"""Rebalance (admin): the optimizer plans which leases to move toward a strategy's
objective; a dry run answers the plan, otherwise a job runs it (``GET /scheduler/jobs/{id}``)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from scheduler.services.command_path import Handled
from scheduler.services.rebalancing import StartRebalance, propose_rebalance
from serve.deps import IdempotencyKeyDep, PrincipalDep, ServicesDep
from serve.replies import reply
from serve.schemas.rebalance import RebalanceIn, RebalanceOut

router = APIRouter(tags=["operations"])


@router.post("/scheduler/rebalance", response_model=RebalanceOut)
async def rebalance(
    body: RebalanceIn,
    principal: PrincipalDep,
    services: ServicesDep,
    key: IdempotencyKeyDep,
) -> Response:
    """Plan at most ``maxMoves`` moves of running leases (same size, Android version and
    labels; onto free devices of ready, untainted nodes; never onto a booked device) that
    raise the strategy's objective most. ``dryRun``: 200 with the plan. Otherwise 202 with
    the plan and its job, which the housekeeper runs move by move (``allocation.moved``,
    reason ``rebalance``); 409 ``rebalance_in_progress`` while another runs."""
    request = body.to_request()
    proposal = await propose_rebalance(services.uow, principal, request, services.clock())
    if body.dryRun:
        return reply(Handled(proposal), RebalanceOut.of(proposal))
    handled = await services.commands.handle(StartRebalance(request, proposal), principal, key)
    started = handled.result
    return reply(handled, RebalanceOut.of(started.proposal, started), 202)
