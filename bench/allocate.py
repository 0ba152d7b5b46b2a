"""Allocate+release latency and throughput of PhoneFleet: Ray Serve, uvicorn, the PG floor.

    python -m bench.allocate --requests 1000 --json /tmp/allocate.json

One run, so that its ratios are comparable: a fresh database (migrated from empty) with a
fleet and a tenant made through the HTTP API, then, for 1 and for 16 concurrent clients
(each with its own token and kept-alive connection), a warm-up and N measured allocate +
release pairs against

* ``uvicorn``: the app under plain uvicorn (``serve.standalone``), the yardstick;
* ``serve``: the app on Ray Serve (a Ray head of its own, throughput-optimized mode with
  HAProxy in front of the replica), through the Serve HTTP port;
* ``floor``: raw psycopg transactions doing the least an allocate and a release must do
  (``pg-floor``), and the same while also updating the tenant's row (``pg-floor+tenant-row``);

and finally a step-by-step profile of the service in-process (no HTTP). It prints the table,
the ratios against the goals and the profile, and writes everything as JSON with ``--json``.
Every server process it starts is stopped at the end, also on error or Ctrl-C; the database
is dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import redis
import uvloop
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from bench import report
from bench.database import ServerUrls, fresh_database, server_version, servers
from bench.fleet import MAX_POOL_DEVICES, Fleet, seed_fleet
from bench.floor import floor_workers
from bench.http_load import http_workers
from bench.pairs import SettingResult, measure
from bench.profile import ProfileResult, profile_service
from bench.servers import PROJECT_ROOT, serve_app, uvicorn_app
from scheduler.config import Settings
from serve.launcher import ClusterPorts

MODES = ("uvicorn", "serve", "floor")
OnPair = Callable[[], None]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.allocate",
        description="Allocate+release over Ray Serve, uvicorn and raw PostgreSQL.",
    )
    parser.add_argument("--requests", type=int, default=1000, help="measured pairs per setting")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up pairs per setting")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument(
        "--modes", nargs="+", choices=MODES, default=list(MODES), help="what to measure, in order"
    )
    parser.add_argument(
        "--profile-requests", type=int, default=300, help="in-process pairs to profile (0: none)"
    )
    parser.add_argument("--devices", type=int, default=400, help="devices of the service pool")
    parser.add_argument("--floor-devices", type=int, default=64)
    parser.add_argument("--db-pool-size", type=int, default=Settings().db_pool_size)
    parser.add_argument("--http-port", type=int, default=8800, help="Serve HTTP port (+0..18)")
    parser.add_argument("--uvicorn-port", type=int, default=8830)
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args(argv)
    if not 0 < args.devices <= MAX_POOL_DEVICES or args.devices < 2 * max(args.concurrency):
        parser.error(f"--devices must lie in {2 * max(args.concurrency)}..{MAX_POOL_DEVICES}")
    if args.floor_devices < 2 * max(args.concurrency):
        parser.error("--floor-devices must be at least twice the highest concurrency")
    return args


# --------------------------------------------------------------------------- display


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(finished_text="[green]✓[/green]"),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        refresh_per_second=4,
    )


@contextlib.contextmanager
def _step(progress: Progress, label: str) -> Iterator[None]:
    """A line with a spinner while ``label`` runs, ticked when it is done."""
    task = progress.add_task(label, total=1)
    try:
        yield
    except BaseException:
        progress.update(task, description=f"[red]✗ {label}[/red]")
        progress.stop_task(task)
        raise
    progress.update(task, completed=1)


def _advancer(progress: Progress, label: str, total: int) -> OnPair:
    task = progress.add_task(label, total=total)
    return lambda: progress.advance(task)


# --------------------------------------------------------------------------- measurements


async def _http_setting(
    mode: str, url: str, tokens: Sequence[str], args: argparse.Namespace, on_pair: OnPair
) -> SettingResult:
    async with http_workers(url, tokens) as workers:
        return await measure(mode, workers, args.requests, args.warmup, on_pair)


def _measure_http(
    runner: asyncio.Runner,
    progress: Progress,
    mode: str,
    url: str,
    fleet: Fleet,
    args: argparse.Namespace,
) -> list[SettingResult]:
    results = []
    for clients in args.concurrency:
        on_pair = _advancer(progress, f"{mode} × {clients}", args.requests)
        tokens = fleet.user_tokens[:clients]
        results.append(runner.run(_http_setting(mode, url, tokens, args, on_pair)))
    return results


async def _floor_setting(
    mode: str,
    database_url: str,
    fleet: Fleet,
    clients: int,
    args: argparse.Namespace,
    on_pair: OnPair,
) -> SettingResult:
    charge = mode == report.FLOOR_TENANT
    async with floor_workers(database_url, fleet.floor, clients, charge_tenant=charge) as workers:
        return await measure(mode, workers, args.requests, args.warmup, on_pair)


def _measure_floor(
    runner: asyncio.Runner,
    progress: Progress,
    database_url: str,
    fleet: Fleet,
    args: argparse.Namespace,
) -> list[SettingResult]:
    results = []
    for mode in (report.FLOOR, report.FLOOR_TENANT):
        for clients in args.concurrency:
            on_pair = _advancer(progress, f"{mode} × {clients}", args.requests)
            setting = _floor_setting(mode, database_url, fleet, clients, args, on_pair)
            results.append(runner.run(setting))
    return results


def _measure_mode(
    mode: str,
    runner: asyncio.Runner,
    progress: Progress,
    settings: Settings,
    database_url: str,
    fleet: Fleet,
    work_dir: Path,
    args: argparse.Namespace,
) -> list[SettingResult]:
    if mode == "floor":
        return _measure_floor(runner, progress, database_url, fleet, args)
    with contextlib.ExitStack() as server:
        if mode == "uvicorn":
            with _step(progress, f"uvicorn on port {args.uvicorn_port}"):
                log_file = work_dir / "uvicorn.log"
                url = server.enter_context(uvicorn_app(settings, args.uvicorn_port, log_file))
        else:
            with _step(progress, f"Ray head and Serve app on port {args.http_port}"):
                head_dir = work_dir / "serve"
                url = server.enter_context(serve_app(settings, head_dir, args.http_port))
        try:
            return _measure_http(runner, progress, mode, url, fleet, args)
        finally:
            with _step(progress, f"stop {mode}"):
                server.close()


# --------------------------------------------------------------------------- the run


def _settings(urls: ServerUrls, database_url: str, args: argparse.Namespace) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=urls.redis,
        events_stream=f"phonefleet:bench:{uuid.uuid4().hex[:12]}:events",
        device_reset_seconds=0.0,
        db_pool_size=args.db_pool_size,
    )


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


def _meta(args: argparse.Namespace, urls: ServerUrls, settings: Settings) -> dict[str, Any]:
    import ray

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.allocate " + " ".join(_argv_of(args)),
        "commit": _git_commit(),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "postgres": server_version(urls.postgres),
        "embedded_servers": list(urls.embedded),
        "db_pool_size": settings.db_pool_size,
        "token_cache_seconds": settings.token_cache_seconds,
        "device_reset_seconds": settings.device_reset_seconds,
        "requests": args.requests,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "devices": args.devices,
    }


def _argv_of(args: argparse.Namespace) -> list[str]:
    parts = [f"--requests {args.requests}", f"--warmup {args.warmup}"]
    parts.append("--concurrency " + " ".join(map(str, args.concurrency)))
    if args.modes != list(MODES):
        parts.append("--modes " + " ".join(args.modes))
    return parts


def _forget_stream(url: str, stream: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.delete(stream)
    finally:
        client.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so every ``finally`` stops what it started."""
    raise KeyboardInterrupt


def run(
    args: argparse.Namespace, console: Console
) -> tuple[dict[str, Any], list[SettingResult], ProfileResult | None]:
    """Set up, measure every mode in order, profile; tear everything down."""
    results: list[SettingResult] = []
    profile: ProfileResult | None = None
    ports = ClusterPorts.from_http_port(args.http_port)
    with _progress(console) as progress, contextlib.ExitStack() as stack:
        work_dir = Path(tempfile.mkdtemp(prefix="pf-bench-"))
        stack.callback(shutil.rmtree, work_dir, ignore_errors=True)
        runner = stack.enter_context(asyncio.Runner(loop_factory=uvloop.new_event_loop))
        with _step(progress, "servers, fresh database, migrations"):
            urls = stack.enter_context(servers(work_dir, ports))
            database_url = stack.enter_context(fresh_database(urls.postgres))
        settings = _settings(urls, database_url, args)
        stack.callback(_forget_stream, urls.redis, settings.events_stream)
        with _step(progress, f"fleet: {args.devices} devices, {max(args.concurrency)} tokens"):
            users = max(args.concurrency)
            seeding = seed_fleet(settings, args.devices, users, args.floor_devices)
            fleet = runner.run(seeding)
        meta = _meta(args, urls, settings)
        for mode in args.modes:
            results += _measure_mode(
                mode, runner, progress, settings, database_url, fleet, work_dir, args
            )
        if args.profile_requests > 0:
            on_pair = _advancer(progress, "in-process profile", args.profile_requests)
            token = fleet.user_tokens[0]
            work = profile_service(settings, token, args.profile_requests, args.warmup, on_pair)
            profile = runner.run(work)
        with _step(progress, "drop the database, stop the servers"):
            stack.close()
    return meta, results, profile


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        meta, results, profile = run(args, console)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; everything started was stopped[/yellow]")
        return 130
    low, high = min(args.concurrency), max(args.concurrency)
    ratios = report.goal_ratios(results, low, high, profile)
    console.print(report.results_table(results))
    console.print(report.ratios_table(ratios))
    if profile is not None:
        console.print(report.profile_table(profile))
    console.print(
        f"[dim]{meta['date']}, {meta['cpus']} × {meta['cpu_model']}, commit {meta['commit']}"
    )
    if args.json is not None:
        report.write_json(args.json, meta, results, ratios, profile)
        console.print(f"raw figures: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
