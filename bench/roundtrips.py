"""Statements and round trips to PostgreSQL per HTTP request of PhoneFleet, on the wire.

    python -m bench.roundtrips --pairs 50 --json /tmp/roundtrips.json

On a fresh database (migrated from empty) with a small fleet made through the HTTP API, the
app runs in this process (httpx over ASGI, no server) with its database URL pointing at a
``WireCounter`` proxy (``bench/request_path/wire.py``, which says what is counted). Each
cycle sends, one request at a time: allocate, GET that allocation, release it; allocate with
an ``Idempotency-Key``, release that with one. A request's counts are those between a reset
of the counter before it and a snapshot after its answer; the table shows their medians.

What is attributed to a request. Nothing else may talk to PostgreSQL in its window, and the
only work the app starts on its own that would is what a committed command hands to the
ports: the device reset a release asks for, and a wake of the queue. So while a request
runs, both are held back (the app's lifecycle and queue dispatcher have ``request_reset`` and
``wake`` replaced, in this process and on these instances only); after the snapshot the
bench runs what was held and waits until it, and all it started, is done. What that cost
is a row of its own (``↳ background after …``; it may use several connections, which the
pool hands out in turn). The change feed's listening connection only receives while requests
run (a NOTIFY is no round trip). The ``conns`` column shows the most connections that sent
something in one window, and ``connects`` how many were opened in all (their startups are
not counted), so a stray one shows.

Not measured: the first ``--warmup`` cycles, which open the pool's connections and bring
psycopg's prepared statements to their steady state. The change feed is listening before
the first request, so the token is cached for the whole run and no request pays a token
lookup (a miss adds a transaction). Device resets take no time (``device_reset_seconds=0``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import shutil
import statistics
import sys
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvloop
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from bench.request_path.database import forget_stream, fresh_database, server_version, servers
from bench.request_path.fleet import seed_fleet
from bench.request_path.wire import WireCounter, WireCounts
from scheduler.bootstrap import Services, build_services
from scheduler.cli.cluster_ports import ClusterPorts
from scheduler.config import Settings
from scheduler.services.node_agent import InProcessDeviceLifecycle
from scheduler.services.queue_dispatch import QueueDrainer
from serve.app import create_app

ALLOCATE_PATH = "/scheduler/devices/allocate"
RELEASE_PATH = "/scheduler/devices/release"
ALLOCATE = "allocate"
GET = "GET allocation"
RELEASE = "release"
ALLOCATE_KEYED = "allocate (keyed)"
RELEASE_KEYED = "release (keyed)"
BACKGROUND = "  ↳ background after "
ALLOCATE_BODY = {"durationMinutes": 30}
DEVICES = 8
FEED_TIMEOUT_S = 10.0
NARROWEST_CONSOLE = 120
#: Only the embedded servers' ports are taken from these, if no server answers.
PORTS = ClusterPorts.from_http_port(8860)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.roundtrips",
        description="PostgreSQL statements and round trips per HTTP request, on the wire.",
    )
    parser.add_argument("--pairs", type=int, default=50, help="measured cycles")
    parser.add_argument("--warmup", type=int, default=10, help="cycles before measuring")
    parser.add_argument("--json", type=Path, help="write every sample here")
    parser.add_argument(
        "--markdown",
        type=Path,
        nargs="?",
        const=Path("-"),
        help="print the table as Markdown (to this file if given)",
    )
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.warmup < 0:
        parser.error("--pairs must be at least 1 and --warmup at least 0")
    return args


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Figure:
    """One request kind's samples, summarized."""

    request: str
    samples: tuple[WireCounts, ...]

    @property
    def statements(self) -> float:
        return statistics.median(s.statements for s in self.samples)

    @property
    def round_trips(self) -> float:
        return statistics.median(s.round_trips for s in self.samples)

    def spread(self, of: Callable[[WireCounts], int]) -> str:
        low, high = min(map(of, self.samples)), max(map(of, self.samples))
        return str(low) if low == high else f"{low}–{high}"

    @property
    def connections(self) -> int:
        return max(s.connections for s in self.samples)

    @property
    def connects(self) -> int:
        return sum(s.connects for s in self.samples)

    def to_json(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "statements_p50": self.statements,
            "round_trips_p50": self.round_trips,
            "samples": [asdict(s) for s in self.samples],
        }


class HeldBackground:
    """The background work of the app's commands (device resets, queue wakes), held while
    a request runs and run by ``settle()``."""

    def __init__(self, services: Services) -> None:
        assert isinstance(services.lifecycle, InProcessDeviceLifecycle)
        assert isinstance(services.queue, QueueDrainer)
        self._lifecycle = services.lifecycle
        self._queue = services.queue
        self._run_reset = services.lifecycle.request_reset
        self._run_wake = services.queue.wake
        self._held: list[Callable[[], None]] = []

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Hold the resets and wakes asked for in the block (``settle()``'s own too)."""
        self._lifecycle.request_reset = self._hold_reset  # type: ignore[method-assign]
        self._queue.wake = self._hold_wake  # type: ignore[method-assign]
        try:
            yield
        finally:
            del self._lifecycle.request_reset, self._queue.wake

    def _hold_reset(self, node_id: uuid.UUID, device_ids: Sequence[uuid.UUID]) -> None:
        self._held.append(functools.partial(self._run_reset, node_id, device_ids))

    def _hold_wake(
        self,
        new_entries: bool = False,
        *,
        tenants: Collection[uuid.UUID] = (),
        devices: Collection[uuid.UUID] = (),
    ) -> None:
        wake = functools.partial(self._run_wake, new_entries, tenants=tenants, devices=devices)
        self._held.append(wake)

    async def settle(self) -> bool:
        """Run what was held and wait until it, and what it asked for, is done; whether
        there was anything."""
        ran = False
        while self._held:
            held, self._held = self._held, []
            for work in held:
                work()
            await self._lifecycle.drain()
            await self._queue.idle()
            ran = True
        return ran


@dataclass
class Cycles:
    """The app in-process behind the counter, and the samples of every request kind."""

    client: httpx.AsyncClient
    counter: WireCounter
    background: HeldBackground
    samples: dict[str, list[WireCounts]] = field(default_factory=dict)
    recording: bool = False

    async def request(self, kind: str, method: str, path: str, expect: int, **kw: Any) -> Any:
        """Send one request, count it, then run its background work and count that."""
        await self.background.settle()
        self.counter.reset()
        response = await self.client.request(method, path, **kw)
        self._record(kind, self.counter.snapshot())
        if response.status_code != expect:
            raise RuntimeError(f"{kind}: HTTP {response.status_code} {response.text[:300]}")
        self.counter.reset()
        if await self.background.settle():
            self._record(BACKGROUND + kind, self.counter.snapshot())
        return response.json()

    def _record(self, kind: str, counts: WireCounts) -> None:
        if self.recording:
            self.samples.setdefault(kind, []).append(counts)

    async def cycle(self) -> None:
        grant = await self.request(ALLOCATE, "POST", ALLOCATE_PATH, 201, json=ALLOCATE_BODY)
        lease = {"allocationId": grant["allocationId"]}
        await self.request(GET, "GET", f"/scheduler/allocations/{lease['allocationId']}", 200)
        await self.request(RELEASE, "POST", RELEASE_PATH, 200, json=lease)
        key = uuid.uuid4().hex
        headers = {"Idempotency-Key": f"allocate-{key}"}
        grant = await self.request(
            ALLOCATE_KEYED, "POST", ALLOCATE_PATH, 201, json=ALLOCATE_BODY, headers=headers
        )
        lease = {"allocationId": grant["allocationId"]}
        headers = {"Idempotency-Key": f"release-{key}"}
        await self.request(RELEASE_KEYED, "POST", RELEASE_PATH, 200, json=lease, headers=headers)


async def measure(
    settings: Settings, token: str, args: argparse.Namespace, on_cycle: Callable[[], None]
) -> list[Figure]:
    """The warm-up, then ``args.pairs`` measured cycles, through a counter in front of the
    database of ``settings``."""
    assert settings.database_url is not None
    async with WireCounter.in_front_of(settings.database_url) as counter:
        proxied = settings.model_copy(update={"database_url": counter.url(settings.database_url)})
        services = build_services(proxied)
        background = HeldBackground(services)
        try:
            await _listening(services)
            transport = httpx.ASGITransport(app=create_app(services))
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://phonefleet",
                headers={"Authorization": f"Bearer {token}"},
            ) as client:
                cycles = Cycles(client, counter, background)
                with background.holding():
                    for index in range(args.warmup + args.pairs):
                        cycles.recording = index >= args.warmup
                        await cycles.cycle()
                        on_cycle()
                    await background.settle()
                return [Figure(kind, tuple(samples)) for kind, samples in cycles.samples.items()]
        finally:
            await services.close()


async def _listening(services: Services) -> None:
    """Start the change feed and wait until it listens: before that, the authenticator
    caches a token for a second only, so one measured request would look it up again."""
    deadline = asyncio.get_running_loop().time() + FEED_TIMEOUT_S
    while not services.changes.listening:
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"the change feed did not listen within {FEED_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- the run


def _settings(redis_url: str, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        events_stream=f"phonefleet:bench:{uuid.uuid4().hex[:12]}:events",
        device_reset_seconds=0.0,
        token_cache_seconds=86_400.0,
        rate_limit_rps=100_000.0,
        rate_limit_burst=100_000,
    )


def run(args: argparse.Namespace, console: Console) -> tuple[list[Figure], dict[str, Any]]:
    """Set up a fresh database and fleet, measure, and drop everything again."""
    progress = Progress(
        SpinnerColumn(finished_text="[green]✓[/green]"),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
    )
    with progress, contextlib.ExitStack() as stack:
        work_dir = Path(tempfile.mkdtemp(prefix="pf-roundtrips-"))
        stack.callback(shutil.rmtree, work_dir, ignore_errors=True)
        runner = stack.enter_context(asyncio.Runner(loop_factory=uvloop.new_event_loop))
        setup = progress.add_task(f"fresh database, {DEVICES} devices, a token", total=1)
        urls = stack.enter_context(servers(work_dir, PORTS))
        database_url = stack.enter_context(fresh_database(urls.postgres))
        settings = _settings(urls.redis, database_url)
        stack.callback(forget_stream, urls.redis, settings.events_stream)
        fleet = runner.run(seed_fleet(settings, DEVICES, 1, floor_devices=2))
        progress.update(setup, completed=1)
        cycles = progress.add_task(
            "cycles (warm-up, then measured)", total=args.warmup + args.pairs
        )
        work = measure(settings, fleet.user_tokens[0], args, lambda: progress.advance(cycles))
        figures = runner.run(work)
        meta = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "pairs": args.pairs,
            "warmup": args.warmup,
            "postgres": server_version(urls.postgres),
            "psycopg": psycopg.__version__,
            "libpq": psycopg.pq.version(),
            "embedded_servers": list(urls.embedded),
        }
    return figures, meta


# --------------------------------------------------------------------------- display

HEADER = ("request", "n", "statements", "round trips", "range (stmts / RTs)", "conns", "connects")


def _rows(figures: Sequence[Figure]) -> list[list[str]]:
    return [
        [
            f.request,
            str(len(f.samples)),
            f"{f.statements:g}",
            f"{f.round_trips:g}",
            f"{f.spread(lambda s: s.statements)} / {f.spread(lambda s: s.round_trips)}",
            str(f.connections),
            str(f.connects),
        ]
        for f in figures
    ]


def table(figures: Sequence[Figure]) -> Table:
    result = Table(
        title="PostgreSQL per request, on the wire (medians; ranges over the samples)",
        caption=(
            "keyed: with an Idempotency-Key header; conns: most connections that sent in one"
            " window; connects: connections opened, in all windows"
        ),
    )
    for index, column in enumerate(HEADER):
        result.add_column(column, justify="left" if index == 0 else "right", no_wrap=index == 0)
    for row in _rows(figures):
        result.add_row(*row)
    return result


def _markdown_label(request: str) -> str:
    if request.startswith(BACKGROUND):
        return f"↳ background after `{request.removeprefix(BACKGROUND)}`"
    return f"`{request}`"


def markdown(figures: Sequence[Figure], meta: dict[str, Any]) -> str:
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|---|" + "---:|" * (len(HEADER) - 1),
        *("| " + " | ".join([_markdown_label(row[0]), *row[1:]]) + " |" for row in _rows(figures)),
    ]
    note = (
        f"`python -m bench.roundtrips --pairs {meta['pairs']}` — {meta['date']}, "
        f"PostgreSQL {meta['postgres']}, psycopg {meta['psycopg']}; medians, ranges over the "
        "samples."
    )
    return note + "\n\n" + "\n".join(lines) + "\n"


def _strays(figures: Sequence[Figure]) -> list[str]:
    """The requests some window of which saw another connection, or a new one (background
    work may use several connections: the pool hands them out in turn)."""
    requests = [f for f in figures if not f.request.startswith(BACKGROUND)]
    return [f.request for f in requests if f.connections > 1 or f.connects > 0]


def _console() -> Console:
    """The terminal's width, but never narrower than the table when piped."""
    if sys.stdout.isatty():
        return Console()
    width = shutil.get_terminal_size((NARROWEST_CONSOLE, 24)).columns
    return Console(width=max(width, NARROWEST_CONSOLE))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = _console()
    try:
        figures, meta = run(args, console)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; the database was dropped[/yellow]")
        return 130
    console.print(table(figures))
    strays = _strays(figures)
    if strays:
        console.print(
            f"[yellow]more than one connection, or a new one, in some windows of: "
            f"{', '.join(strays)}; those counts include it[/yellow]"
        )
    if args.markdown is not None:
        text = markdown(figures, meta)
        if str(args.markdown) == "-":
            sys.stdout.write(text)
        else:
            args.markdown.write_text(text)
            console.print(f"Markdown: {args.markdown}")
    if args.json is not None:
        data = {"meta": meta, "requests": [f.to_json() for f in figures]}
        args.json.write_text(json.dumps(data, indent=2) + "\n")
        console.print(f"samples: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
