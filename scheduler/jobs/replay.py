"""Replay a workload log through the queue under several policies, in simulated time, and
compare them: utilization, waits per tier, fairness (``scheduler.domain.replay``). Inside the
cluster each policy runs as a Ray task of its own, in parallel.

    python -m scheduler.jobs.replay --trace /path/KTH-SP2-1996-2.1-cln.swf.gz \\
        --policy fifo --policy priority --devices 16 --jobs 3000 [--load 1.0] [--out report.json]

Arrivals are compressed to ``--load`` (offered work over what the devices can do). Policies:
fifo, priority (the service's defaults), no-fair-share, strong-fair-share, slow-aging.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scheduler.bootstrap import build_services
from scheduler.config import Settings
from scheduler.domain.replay import POLICIES, ReplayReport, TraceJob, compress, replay
from scheduler.jobs.run import JobRun, run_job
from scheduler.jobs.traces import read_trace

KIND = "replay"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m scheduler.jobs.{KIND}", description=__doc__)
    parser.add_argument("--trace", type=Path, required=True)
    parser.add_argument("--policy", action="append", choices=sorted(POLICIES), default=[])
    parser.add_argument("--devices", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=3000, help="the trace's first N jobs")
    parser.add_argument("--load", type=float, default=1.0)
    parser.add_argument("--reset-seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=None, help="the report as JSON")
    args = parser.parse_args(argv)
    args.policy = args.policy or ["fifo", "priority"]
    if args.devices < 1 or args.jobs < 1 or args.load <= 0:
        parser.error("--devices and --jobs are at least 1, --load above 0")
    if not args.trace.is_file():
        parser.error(f"no trace at {args.trace}")
    return args


def _print(reports: list[ReplayReport]) -> None:
    for r in reports:
        print(
            f"{r.policy}: {r.jobs} jobs on {r.devices} devices, utilization"
            f" {r.utilization:.1%}, fairness {r.fairness:.3f}, mean slowdown {r.mean_slowdown:.2f}",
            flush=True,
        )
        for w in r.waits:
            print(
                f"  {w.tier:<11} {w.jobs:>6} jobs, {w.waited:>6} waited;"
                f" wait p50 {w.p50_seconds / 60:.1f} min, p90 {w.p90_seconds / 60:.1f} min,"
                f" max {w.max_seconds / 60:.1f} min",
                flush=True,
            )


async def _replays(
    jobs: list[TraceJob], args: argparse.Namespace, run: JobRun
) -> list[ReplayReport]:
    """One replay per policy: as parallel Ray tasks inside the cluster, else one by one."""
    options = {"devices": args.devices, "reset_seconds": args.reset_seconds}
    if not os.environ.get("RAY_ADDRESS"):
        reports = []
        for policy in args.policy:
            reports.append(await asyncio.to_thread(replay, jobs, policy=policy, **options))
            await run.advance()
        return reports
    import ray

    from actors.ray_client import connect

    connect(os.environ["RAY_ADDRESS"])
    task = ray.remote(num_cpus=1)(replay)
    shared = ray.put(jobs)
    pending = {task.remote(shared, policy=p, **options): p for p in args.policy}
    done: dict[str, ReplayReport] = {}
    while pending:
        ready, _ = await asyncio.to_thread(ray.wait, list(pending), num_returns=1)
        for ref in ready:
            done[pending.pop(ref)] = await asyncio.to_thread(ray.get, ref)
            await run.advance()
    return [done[p] for p in args.policy]


async def run(args: argparse.Namespace, settings: Settings | None = None) -> JobRun:
    services = build_services(settings or Settings())
    params: dict[str, Any] = {
        "trace": str(args.trace),
        "policies": args.policy,
        "devices": args.devices,
        "jobs": args.jobs,
        "load": args.load,
    }
    try:
        async with JobRun(services, KIND, params) as job:
            job.expect(len(args.policy))
            trace = read_trace(args.trace, args.jobs)
            jobs = compress(trace, args.devices, args.load)
            reports = await _replays(jobs, args, job)
            _print(reports)
            result: dict[str, Any] = {"reports": [dataclasses.asdict(r) for r in reports]}
            if args.out is not None:
                args.out.write_text(json.dumps(result, indent=2))
                result["out"] = str(args.out.resolve())
            job.result = result
        return job
    finally:
        await services.close()


def main(argv: Sequence[str] | None = None) -> None:
    run_job(argv, parse_args, run)


if __name__ == "__main__":
    main()
