"""Rebalance: the optimizer plans which running leases to move toward a strategy's objective,
and this job moves them one by one (the same plan and moves as ``POST /scheduler/rebalance``).

    python -m scheduler.jobs.rebalance --strategy spread --max-moves 20 [--label pool=eu] \\
        [--dry-run] [--max-seconds 2]

The rebalance's record (kind ``rebalance``: its moves, progress, skipped moves and why) is
the one ``GET /scheduler/jobs/{id}`` shows. The housekeeper makes the moves (it hands the
vacated devices to their node actors for their reset); this job follows them with a
progress bar until the last one. A dry run prints the plan.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

from scheduler.bootstrap import Services, build_services
from scheduler.config import Settings
from scheduler.domain.identity import SYSTEM
from scheduler.domain.jobs import Job, JobStatus
from scheduler.jobs.run import progress_bar, run_job
from scheduler.services.rebalancing import (
    MAX_MOVES,
    RebalanceProposal,
    RebalanceRequest,
    StartRebalance,
    propose_rebalance,
)

#: How often the job reads its record while following the moves.
POLL_SECONDS = 0.5


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not key=value")
    return key, value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scheduler.jobs.rebalance", description=__doc__)
    parser.add_argument("--strategy", default=None, help="catalogue id or name, or a type")
    parser.add_argument("--max-moves", type=int, required=True)
    parser.add_argument("--label", type=_label, action="append", default=[])
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--max-seconds", type=float, default=2.0, help="the optimizer's time")
    parser.add_argument(
        "--wait-seconds", type=float, default=600.0, help="how long to follow the moves"
    )
    args = parser.parse_args(argv)
    if not 0 <= args.max_moves <= MAX_MOVES:
        parser.error(f"--max-moves is between 0 and {MAX_MOVES}")
    return args


def _print_plan(proposal: RebalanceProposal) -> None:
    print(
        f"{proposal.strategy_name} ({proposal.strategy.value}):"
        f" objective {proposal.objective_before} → {proposal.objective_after},"
        f" nodes in use {proposal.nodes_in_use_before} → {proposal.nodes_in_use_after},"
        f" {len(proposal.moves)} moves of {proposal.leases_considered} leases"
        f"{' (proven optimal)' if proposal.proven_optimal else ''}",
        flush=True,
    )
    for move in proposal.moves:
        print(f"  {move.allocation_id}: {move.reason}", flush=True)


async def run(args: argparse.Namespace, settings: Settings | None = None) -> Job | None:
    """Plan, and unless a dry run, move; the rebalance's finished record (``None``: dry)."""
    services = build_services(settings or Settings())
    try:
        request = RebalanceRequest(
            args.max_moves, args.strategy, args.dry_run, args.max_seconds, dict(args.label)
        )
        proposal = await propose_rebalance(services.uow, SYSTEM, request, services.clock())
        _print_plan(proposal)
        if args.dry_run:
            return None
        started = await services.commands.handle(StartRebalance(request, proposal), SYSTEM, None)
        return await _follow(services, started.result.job, args.wait_seconds)
    finally:
        await services.close()


async def _follow(services: Services, job: Job, timeout: float) -> Job:
    """Show the moves' progress as the housekeeper makes them, until the job ends."""
    print(f"job {job.id} (rebalance): GET /scheduler/jobs/{job.id}", flush=True)
    bar = progress_bar("rebalance", job.total)
    deadline = time.monotonic() + timeout
    current = job
    while current.status is JobStatus.RUNNING:
        if time.monotonic() > deadline:
            bar.close()
            raise TimeoutError(
                f"the housekeeper made {current.done} of {current.total} moves in {timeout:g} s;"
                " the job goes on with it"
            )
        await asyncio.sleep(POLL_SECONDS)
        async with services.uow() as uow:
            found = await uow.jobs.get(job.id)
        assert found is not None
        bar.update(found.done - current.done)
        current = found
    bar.close()
    print(f"job {job.id}: {current.status.value} {dict(current.counts)}", flush=True)
    for error in current.errors:
        print(f"  skipped {error.item}: {error.code} ({error.message})", flush=True)
    return current


def main(argv: Sequence[str] | None = None) -> None:
    run_job(argv, parse_args, run)


if __name__ == "__main__":
    main()
