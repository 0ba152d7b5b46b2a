"""Allocate+release latency and throughput of PhoneFleet: Ray Serve, uvicorn, the PG floor.

    python -m bench.allocate --requests 1000 --json /tmp/allocate.json

One run, so that its ratios are comparable. Each mode gets a fresh database (migrated from
empty) with the same fleet, tenant and user tokens made through the HTTP API, so that none
inherits another's history; then, for 1 and for 16 concurrent clients (each with its own
token and kept-alive connection), a warm-up and N measured allocate + release pairs against

* ``uvicorn``: the app under plain uvicorn (``serve.standalone``), the yardstick;
* ``serve``: the app on Ray Serve (a Ray head of its own, throughput-optimized mode with
  HAProxy in front of the replica), through the Serve HTTP port;
* ``floor``: raw psycopg transactions doing the least an allocate and a release must do
  (``pg-floor``), and the same while also updating the tenant's row (``pg-floor+tenant-row``);

and finally a step-by-step profile of the service in-process (no HTTP). It prints the table,
the ratios against the goals and the profile, and writes everything as JSON with ``--json``.
Every server process it starts is stopped at the end, also on error or Ctrl-C (and SIGTERM);
every database it creates is dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

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

from bench.request_path import markdown, report
from bench.request_path.database import ServerUrls, forget_stream, fresh_database, servers
from bench.request_path.fleet import MAX_POOL_DEVICES, Fleet, seed_fleet
from bench.request_path.floor import floor_workers
from bench.request_path.http_load import http_workers, probe_health
from bench.request_path.meta import run_meta
from bench.request_path.pairs import SettingResult, idle_cpu, measure
from bench.request_path.profile import profile_service
from bench.request_path.report import RunResult
from bench.request_path.servers import serve_app, uvicorn_app
from scheduler.cli.cluster_ports import ClusterPorts
from scheduler.config import Settings

MODES = ["uvicorn", "serve", "floor"]
NARROWEST_CONSOLE = 120
IDLE_SECONDS = 3.0
#: A setting is suspect when foreign work took more than this share of the machine...
QUIET = 10.0
#: ... and a server's idle interval when the machine was busier than this (PostgreSQL's
#: autovacuum of the freshly seeded database alone can take a few percent).
QUIET_IDLE = 20.0
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
    parser.add_argument(
        "--health-requests", type=int, default=300, help="GET /healthz per HTTP mode (0: none)"
    )
    parser.add_argument("--devices", type=int, default=400, help="devices of the service pool")
    parser.add_argument(
        "--tenants", type=int, default=1, help="spread the clients over this many tenants"
    )
    parser.add_argument("--floor-devices", type=int, default=64)
    parser.add_argument("--db-pool-size", type=int, default=Settings().db_pool_size)
    parser.add_argument("--http-port", type=int, default=8800, help="Serve HTTP port (+0..18)")
    parser.add_argument("--uvicorn-port", type=int, default=8830)
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--markdown", type=Path, help="write the tables here, as Markdown")
    args = parser.parse_args(argv)
    busiest = max(args.concurrency)
    if not 2 * busiest <= args.devices <= MAX_POOL_DEVICES:
        parser.error(f"--devices must lie in {2 * busiest}..{MAX_POOL_DEVICES}")
    if args.floor_devices < 2 * busiest:
        parser.error("--floor-devices must be at least twice the highest concurrency")
    if not 1 <= args.tenants <= busiest:
        parser.error("--tenants must lie between 1 and the highest concurrency")
    return args


# --------------------------------------------------------------------------- display


def _console() -> Console:
    """The terminal's width, but never narrower than the tables when piped."""
    if sys.stdout.isatty():
        return Console()
    width = shutil.get_terminal_size((NARROWEST_CONSOLE, 24)).columns
    return Console(width=max(width, NARROWEST_CONSOLE))


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
    """A line with a spinner while ``label`` runs, ticked when done, crossed on error."""
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


@dataclass(frozen=True)
class Stage:
    """A fresh database with its fleet, for one mode."""

    settings: Settings
    database_url: str
    fleet: Fleet


def _settings(redis_url: str, database_url: str, args: argparse.Namespace) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        events_stream=f"phonefleet:bench:{uuid.uuid4().hex[:12]}:events",
        device_reset_seconds=0.0,
        db_pool_size=args.db_pool_size,
        # every request still pays its rate-limit check (one Redis round trip); the limit
        # itself is raised so that one client at full speed is measured, not refused
        rate_limit_rps=100_000.0,
        rate_limit_burst=100_000,
    )


@dataclass
class Bench:
    """One run: the servers, the event loop and the display every mode is measured with."""

    args: argparse.Namespace
    urls: ServerUrls
    runner: asyncio.Runner
    progress: Progress
    work_dir: Path
    result: RunResult

    def measure_mode(self, mode: str) -> None:
        with self._stage(mode) as stage:
            if mode == "floor":
                self._measure_floor(stage)
                return
            with contextlib.ExitStack() as server:
                with _step(self.progress, self._server_label(mode)):
                    url = server.enter_context(self._server(mode, stage.settings))
                try:
                    self._measure_http(mode, url, stage.fleet)
                finally:
                    with _step(self.progress, f"stop {mode}"):
                        server.close()

    def profile(self) -> None:
        with self._stage("profile") as stage:
            count = self.args.profile_requests
            on_pair = _advancer(self.progress, "in-process profile", count)
            token = stage.fleet.user_tokens[0]
            work = profile_service(stage.settings, token, count, self.args.warmup, on_pair)
            self.result.profile = self.runner.run(work)

    @contextlib.contextmanager
    def _stage(self, mode: str) -> Iterator[Stage]:
        """A database of its own for ``mode``, dropped afterwards: the app's background work
        (queue drains) grows with the lease history, which no mode should inherit."""
        args, users = self.args, max(self.args.concurrency)
        label = f"{mode}: fresh database, {args.devices} devices, {users} tokens"
        with contextlib.ExitStack() as stack:
            with _step(self.progress, label):
                database_url = stack.enter_context(fresh_database(self.urls.postgres))
                settings = _settings(self.urls.redis, database_url, args)
                stack.callback(forget_stream, self.urls.redis, settings.events_stream)
                seeding = seed_fleet(
                    settings, args.devices, users, args.floor_devices, args.tenants
                )
                fleet = self.runner.run(seeding)
            yield Stage(settings, database_url, fleet)

    def _server_label(self, mode: str) -> str:
        if mode == "uvicorn":
            return f"uvicorn on port {self.args.uvicorn_port}"
        return f"Ray head and Serve app on port {self.args.http_port}"

    def _server(self, mode: str, settings: Settings) -> contextlib.AbstractContextManager[str]:
        if mode == "uvicorn":
            log_file = self.work_dir / "uvicorn.log"
            return uvicorn_app(settings, self.args.uvicorn_port, log_file)
        return serve_app(settings, self.work_dir / "serve", self.args.http_port)

    def _measure_http(self, mode: str, url: str, fleet: Fleet) -> None:
        with _step(self.progress, f"{mode}: CPU use while idle, {IDLE_SECONDS:.0f} s"):
            self.result.idle_cpu[mode] = self.runner.run(idle_cpu(IDLE_SECONDS))
        if self.args.health_requests > 0:
            with _step(self.progress, f"{mode}: GET /healthz × {self.args.health_requests}"):
                probe = probe_health(url, self.args.health_requests, self.args.warmup)
                self.result.health[mode] = self.runner.run(probe)
        for clients in self.args.concurrency:
            on_pair = _advancer(self.progress, f"{mode} × {clients}", self.args.requests)
            tokens = fleet.user_tokens[:clients]
            setting = self.runner.run(self._http_setting(mode, url, tokens, on_pair))
            self.result.settings.append(setting)

    async def _http_setting(
        self, mode: str, url: str, tokens: Sequence[str], on_pair: OnPair
    ) -> SettingResult:
        async with http_workers(url, tokens) as workers:
            return await measure(mode, workers, self.args.requests, self.args.warmup, on_pair)

    def _measure_floor(self, stage: Stage) -> None:
        for mode in (report.FLOOR, report.FLOOR_TENANT):
            for clients in self.args.concurrency:
                on_pair = _advancer(self.progress, f"{mode} × {clients}", self.args.requests)
                setting = self._floor_setting(stage, mode, clients, on_pair)
                self.result.settings.append(self.runner.run(setting))

    async def _floor_setting(
        self, stage: Stage, mode: str, clients: int, on_pair: OnPair
    ) -> SettingResult:
        charge = mode == report.FLOOR_TENANT
        pool = stage.fleet.floor
        async with floor_workers(
            stage.database_url, pool, clients, charge_tenant=charge
        ) as workers:
            return await measure(mode, workers, self.args.requests, self.args.warmup, on_pair)


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace, console: Console) -> RunResult:
    """Measure every mode in order, then profile; stop and drop everything on the way out."""
    result = RunResult()
    ports = ClusterPorts.from_http_port(args.http_port)
    with _progress(console) as progress, contextlib.ExitStack() as stack:
        work_dir = Path(tempfile.mkdtemp(prefix="pf-bench-"))
        stack.callback(shutil.rmtree, work_dir, ignore_errors=True)
        runner = stack.enter_context(asyncio.Runner(loop_factory=uvloop.new_event_loop))
        with _step(progress, "PostgreSQL and Redis"):
            urls = stack.enter_context(servers(work_dir, ports))
        result.meta = run_meta(args, urls, MODES)
        bench = Bench(args, urls, runner, progress, work_dir, result)
        for mode in args.modes:
            bench.measure_mode(mode)
        if args.profile_requests > 0:
            bench.profile()
        with _step(progress, "clean up"):
            stack.close()
    return result


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so every ``finally`` stops what it started."""
    raise KeyboardInterrupt


def _disturbed(result: RunResult) -> list[str]:
    """The intervals in which other work on the machine took a noticeable share of it."""
    idle = result.idle_cpu.items()
    noisy = [f"{m} (idle)" for m, use in idle if use.machine_busy_pct > QUIET_IDLE]
    return noisy + [
        f"{r.mode} × {r.concurrency}" for r in result.settings if r.cpu.foreign_pct > QUIET
    ]


def _print(console: Console, args: argparse.Namespace, result: RunResult) -> list[report.Ratio]:
    low, high = min(args.concurrency), max(args.concurrency)
    ratios = report.goal_ratios(result, low, high)
    console.print(report.results_table(result.settings))
    console.print(report.cpu_table(result.settings))
    console.print(report.ratios_table(ratios))
    if result.profile is not None:
        console.print(report.profile_table(result.profile))
    noisy = _disturbed(result)
    if noisy:
        console.print(
            f"[yellow]other work took much of the machine during: {', '.join(noisy)};"
            " those figures are suspect: run again on a quiet machine[/yellow]"
        )
    meta = result.meta
    console.print(
        f"[dim]{meta['date']}, {meta['cpus']} × {meta['cpu_model']}, commit {meta['commit']}"
    )
    return ratios


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = _console()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = run(args, console)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; everything started was stopped[/yellow]")
        return 130
    ratios = _print(console, args, result)
    if args.json is not None:
        report.write_json(args.json, result, ratios)
        console.print(f"raw figures: {args.json}")
    if args.markdown is not None:
        args.markdown.write_text(markdown.render(result, ratios))
        console.print(f"Markdown tables: {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
