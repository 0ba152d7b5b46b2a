"""Usage report: what each tenant, user and device used in a window, to the second, from the
usage records (one per ended lease), as CSV or JSON lines.

    python -m scheduler.jobs.usage_report --from 2026-12-01T00:00:00Z --to 2026-12-08T00:00:00Z \\
        --format csv --out /tmp/usage.csv [--tenant <tenant id>]

Rows per tenant: the tenant's total, then one per user, then one per device (``level``).
The file is written next to ``--out`` and renamed onto it when complete.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from scheduler.bootstrap import build_services
from scheduler.config import Settings
from scheduler.domain.usage_stats import UsageTotal
from scheduler.jobs.run import JobRun, run_job
from scheduler.services.statistics import usage_totals

KIND = "usage_report"
COLUMNS = [f.name for f in dataclasses.fields(UsageTotal)]


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (e.g. 2026-12-01T00:00:00Z)")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m scheduler.jobs.{KIND}", description=__doc__)
    parser.add_argument("--from", dest="start", type=_instant, required=True)
    parser.add_argument("--to", dest="end", type=_instant, required=True)
    parser.add_argument("--tenant", type=uuid.UUID, default=None)
    parser.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.end <= args.start:
        parser.error("--to must come after --from")
    return args


def _row(total: UsageTotal) -> dict[str, object]:
    return {k: "" if v is None else str(v) for k, v in dataclasses.asdict(total).items()}


async def run(args: argparse.Namespace, settings: Settings | None = None) -> JobRun:
    """Write the report; the finished run (its record says how it went)."""
    services = build_services(settings or Settings())
    params = {
        "from": args.start.isoformat(),
        "to": args.end.isoformat(),
        "tenant": str(args.tenant) if args.tenant else None,
        "format": args.format,
        "out": str(args.out),
    }
    try:
        async with JobRun(services, KIND, params) as job:
            totals = await usage_totals(services.uow(), args.start, args.end, args.tenant)
            job.expect(len(totals))
            partial = args.out.with_name(args.out.name + ".partial")
            partial.parent.mkdir(parents=True, exist_ok=True)
            with partial.open("w", newline="") as out:
                writer = csv.DictWriter(out, COLUMNS) if args.format == "csv" else None
                if writer is not None:
                    writer.writeheader()
                for total in totals:
                    if writer is not None:
                        writer.writerow(_row(total))
                    else:
                        out.write(json.dumps(dataclasses.asdict(total), default=str) + "\n")
                    await job.advance(total.level)
            partial.replace(args.out)
            tenants = [t for t in totals if t.level == "tenant"]
            job.result = {
                "out": str(args.out.resolve()),
                "format": args.format,
                "rows": len(totals),
                "tenants": len(tenants),
                "leases": sum(t.leases for t in tenants),
                "seconds": sum(t.seconds for t in tenants),
            }
        return job
    finally:
        await services.close()


def main(argv: Sequence[str] | None = None) -> None:
    run_job(argv, parse_args, run)


if __name__ == "__main__":
    main()
