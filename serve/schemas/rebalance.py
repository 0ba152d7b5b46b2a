"""Bodies of the rebalance: the request, the plan and the job that runs it."""

from __future__ import annotations

import uuid

from pydantic import Field

from scheduler.services.rebalancing import (
    MAX_MOVES,
    PlannedMove,
    RebalanceProposal,
    RebalanceRequest,
    RebalanceStarted,
)
from serve.schemas.base import Body, Labels, LabelsField, Out
from serve.schemas.jobs import JobOut


class RebalanceIn(Body):
    """``strategy``: a catalogue strategy's id or name, or a type (default: the active
    one); at most ``maxMoves`` leases move; ``dryRun`` only plans; ``labels``: only the
    nodes carrying them (default: the whole fleet)."""

    maxMoves: int = Field(ge=0, le=MAX_MOVES)
    strategy: str | None = Field(default=None, min_length=1, max_length=128)
    dryRun: bool = False
    maxSeconds: float = Field(default=2.0, ge=0.05, le=30.0)
    labels: Labels = LabelsField

    def to_request(self) -> RebalanceRequest:
        return RebalanceRequest(
            self.maxMoves, self.strategy, self.dryRun, self.maxSeconds, dict(self.labels)
        )


class BeforeAfter(Out):
    before: float
    after: float


class PlannedMoveOut(Out):
    allocationId: uuid.UUID
    fromDeviceId: uuid.UUID
    toDeviceId: uuid.UUID
    fromNodeId: uuid.UUID
    toNodeId: uuid.UUID
    #: What the move adds to the objective, the moves run in order.
    gain: int
    reason: str

    @classmethod
    def of(cls, m: PlannedMove) -> PlannedMoveOut:
        return cls(
            allocationId=m.allocation_id,
            fromDeviceId=m.from_device_id,
            toDeviceId=m.to_device_id,
            fromNodeId=m.from_node_id,
            toNodeId=m.to_node_id,
            gain=m.gain,
            reason=m.reason,
        )


class RebalanceOut(Out):
    """The plan (``objective``: the strategy's score of where the leases sit; higher is
    better) and, unless a dry run, the job that runs it (``GET /scheduler/jobs/{id}``)."""

    dryRun: bool
    strategy: str
    strategyType: str
    maxMoves: int
    leasesConsidered: int
    objective: BeforeAfter
    nodesInUse: BeforeAfter
    utilisationSpread: BeforeAfter
    moves: list[PlannedMoveOut]
    #: ``greedy`` or ``cp-sat``: whose plan it is (CP-SAT's only when it scores better).
    solver: str
    #: CP-SAT proved that no plan within ``maxMoves`` scores better.
    provenOptimal: bool
    solveSeconds: float
    job: JobOut | None = None

    @classmethod
    def of(cls, p: RebalanceProposal, started: RebalanceStarted | None = None) -> RebalanceOut:
        return cls(
            dryRun=started is None,
            strategy=p.strategy_name,
            strategyType=p.strategy.value,
            maxMoves=p.max_moves,
            leasesConsidered=p.leases_considered,
            objective=BeforeAfter(before=p.objective_before, after=p.objective_after),
            nodesInUse=BeforeAfter(before=p.nodes_in_use_before, after=p.nodes_in_use_after),
            utilisationSpread=BeforeAfter(
                before=p.utilisation_spread_before, after=p.utilisation_spread_after
            ),
            moves=[PlannedMoveOut.of(m) for m in p.moves],
            solver=p.solver,
            provenOptimal=p.proven_optimal,
            solveSeconds=p.solve_seconds,
            job=JobOut.of(started.job) if started else None,
        )
