"""What a run ran on and with: the facts printed under the tables and kept in the JSON."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.request_path.database import ServerUrls, server_version
from bench.request_path.servers import PROJECT_ROOT


def _git_commit() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return done.stdout.strip()
    return "?"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def command_line(args: argparse.Namespace, default_modes: list[str]) -> str:
    """The command that repeats this run (options left at their defaults omitted)."""
    parts = ["python -m bench.allocate", f"--requests {args.requests}", f"--warmup {args.warmup}"]
    parts.append("--concurrency " + " ".join(map(str, args.concurrency)))
    if args.modes != default_modes:
        parts.append("--modes " + " ".join(args.modes))
    if args.tenants != 1:
        parts.append(f"--tenants {args.tenants}")
    return " ".join(parts)


def run_meta(
    args: argparse.Namespace, urls: ServerUrls, default_modes: list[str]
) -> dict[str, Any]:
    import ray

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command_line(args, default_modes),
        "commit": _git_commit(),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "postgres": server_version(urls.postgres),
        "embedded_servers": list(urls.embedded),
        "db_pool_size": args.db_pool_size,
        "requests": args.requests,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "devices": args.devices,
        "tenants": args.tenants,
        "modes": args.modes,
    }
