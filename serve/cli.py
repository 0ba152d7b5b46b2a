"""``phonefleet``: bring the whole service up on one machine, take it down, and report on it.

``phonefleet up`` starts, in order: an embedded PostgreSQL and Redis in the data folder (only
when ``PHONEFLEET_DATABASE_URL`` / ``PHONEFLEET_REDIS_URL`` are unset), the migrations, the
admin token, a local Ray head (or, with ``RAY_ADDRESS`` set, an existing cluster), the Serve
app and the housekeeper. Every step is idempotent, so running ``up`` again repairs or
redeploys. What ``up`` started is recorded in ``<data_dir>/up.json``; ``down`` stops exactly
that, by pid. ``status`` checks each component and exits non-zero if one is down.

Ray runs with token auth (see :mod:`serve.launcher`): ``up`` prints the environment line that
``ray job submit`` and other Ray clients need.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from scheduler.adapters import embedded_servers
from scheduler.domain.identity import new_token
from serve import launcher
from serve.demo_fleet import seed_demo_fleet
from serve.launcher import AUTH_EXPORT_LINE, ClusterPorts

if TYPE_CHECKING:
    from scheduler.bootstrap import Services
    from scheduler.config import Settings

T = TypeVar("T")

APP_IMPORT_PATH = "serve.deployment:app_builder"

app = typer.Typer(
    name="phonefleet",
    help="PhoneFleet: a Ray-native scheduler for cloud-phone fleets.",
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")
console = Console()

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="PHONEFLEET_DATA_DIR",
        help="Folder for the embedded servers, the Ray head and their logs "
        "(default: ~/.phonefleet).",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class UpRecord:
    """What ``up`` started, so that ``down`` and ``status`` touch only that."""

    ray_address: str
    local_head: bool
    embedded_postgres: bool
    embedded_redis: bool
    api_url: str
    dashboard_url: str | None

    @staticmethod
    def path(data_dir: Path) -> Path:
        return data_dir / "up.json"

    def save(self, data_dir: Path) -> None:
        self.path(data_dir).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, data_dir: Path) -> UpRecord | None:
        try:
            return cls(**json.loads(cls.path(data_dir).read_text()))
        except (OSError, ValueError, TypeError):
            return None


# --------------------------------------------------------------------------- up


@app.command()
def up(
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed a simulated fleet to play with.")
    ] = False,
    data_dir: DataDirOption = None,
    import_path: Annotated[
        str, typer.Option("--app", hidden=True, help="Serve application builder.")
    ] = APP_IMPORT_PATH,
) -> None:
    """Start PhoneFleet: databases, migrations, Ray head, Serve app and housekeeper."""
    _quiet_ray_logs()
    settings = _settings(data_dir)
    folder = _data_dir(settings)
    ports = launcher.ClusterPorts.from_http_port(settings.http_port)
    external_ray = os.environ.get("RAY_ADDRESS")
    embedded_postgres = settings.database_url is None
    embedded_redis = settings.redis_url is None

    with _Steps() as steps:
        database_url = settings.database_url
        if database_url is None:
            with steps.step("Embedded PostgreSQL") as step:
                database_url = _start_postgres(folder, ports)
                step.done(_redact(database_url))
        redis_url = settings.redis_url
        if redis_url is None:
            with steps.step("Embedded Redis") as step:
                redis_url = _start_redis(folder, ports)
                step.done(redis_url)
        settings = settings.model_copy(
            update={"database_url": database_url, "redis_url": redis_url, "data_dir": folder}
        )
        if not external_ray:  # the files are on this machine only
            settings = _passwords_to_files(settings, folder)

        with steps.step("Database migrations") as step:
            _run_migrations(settings.require_urls()[0])
            step.done("at head")

        with steps.step("Admin token") as step:
            admin_token = _admin_token(settings, folder)
            _bootstrap_admin_token(settings, admin_token)
            step.done("from PHONEFLEET_ADMIN_TOKEN" if settings.admin_token else "ready")

        if external_ray:
            address, dashboard_url = external_ray, None
            with steps.step("Ray cluster") as step:
                launcher.connect(address)
                step.done(f"existing cluster at {address}")
        else:
            with steps.step("Ray head") as step:
                head = launcher.start_head(folder, ports, _job_env(settings))
                address, dashboard_url = head.address, head.dashboard_url
                step.done(f"{address} (pid {head.pid})")

        with steps.step("Serve app") as step:
            api_url = launcher.deploy_app(address, ports, import_path, _app_args(settings))
            step.done(api_url)

        with steps.step("Housekeeper") as step:
            _ensure_housekeeper(settings)
            step.done("running")

        demo_token = None
        if demo:
            with steps.step("Demo fleet") as step:
                demo_token, summary = seed_demo_fleet(api_url, admin_token)
                step.done(summary)

    UpRecord(
        ray_address=address,
        local_head=not external_ray,
        embedded_postgres=embedded_postgres,
        embedded_redis=embedded_redis,
        api_url=api_url,
        dashboard_url=dashboard_url,
    ).save(folder)
    metrics_url = None if external_ray else ports.metrics_url
    _print_summary(
        api_url, dashboard_url, address, admin_token, demo_token=demo_token, metrics=metrics_url
    )


def _start_postgres(folder: Path, ports: ClusterPorts) -> str:
    return embedded_servers.start_embedded_postgres(folder, port=ports.postgres)


def _start_redis(folder: Path, ports: ClusterPorts) -> str:
    return embedded_servers.start_embedded_redis(folder, ports.redis)


def _run_migrations(database_url: str) -> None:
    # PLUG-IN: schema migrations (Alembic), safe to run on every `up`.
    from scheduler.adapters.migrations import upgrade_to_head

    upgrade_to_head(database_url)


def _admin_token(settings: Settings, folder: Path) -> str:
    """PHONEFLEET_ADMIN_TOKEN, else the one generated by an earlier ``up``, else a new one."""
    if settings.admin_token:
        return settings.admin_token
    path = folder / "admin_token"
    with contextlib.suppress(OSError):
        if token := path.read_text().strip():
            return token
    token = new_token()
    _write_secret(path, token)
    return token


def _write_secret(path: Path, secret: str) -> None:
    """``secret`` in ``path``, readable by this user only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")


def _passwords_to_files(settings: Settings, folder: Path) -> Settings:
    """The URLs' passwords moved into files of ``folder`` (read by the processes of this
    machine's cluster on connect), so that no actor or replica argument carries them."""
    update: dict[str, Any] = {}
    for name in ("database", "redis"):
        url = getattr(settings, f"{name}_url")
        password = urlsplit(url).password if url else None
        if password is None or getattr(settings, f"{name}_password_file") is not None:
            continue
        path = folder / f"{name}_password"
        _write_secret(path, unquote(password))
        update |= {f"{name}_url": _redact(url, ""), f"{name}_password_file": path}
    return settings.model_copy(update=update)


def _bootstrap_admin_token(settings: Settings, token: str) -> None:
    """Register ``token`` as an admin token of the system tenant (idempotent)."""
    from scheduler.services.tenancy import ensure_admin_token

    async def register(services: Services) -> None:
        await ensure_admin_token(services.uow(), token, now=services.clock())

    _run_with_services(settings, register)


def _run_with_services(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    """Run ``work`` against this process's own services, then close them."""
    import asyncio

    from scheduler.bootstrap import build_services

    async def run() -> T:
        services = build_services(settings)
        try:
            return await work(services)
        finally:
            await services.close()

    return asyncio.run(run())


def _job_env(settings: Settings) -> dict[str, str]:
    """What the head's processes must know that the environment may not say (the embedded
    servers' URLs): jobs sent with ``ray job submit`` read their settings from it."""
    env = {
        "PHONEFLEET_DATABASE_URL": settings.database_url,
        "PHONEFLEET_REDIS_URL": settings.redis_url,
        # passwords stay in their files
        "PHONEFLEET_DATABASE_PASSWORD_FILE": settings.database_password_file,
        "PHONEFLEET_REDIS_PASSWORD_FILE": settings.redis_password_file,
    }
    return {key: str(value) for key, value in env.items() if value}


def _app_args(settings: Settings) -> dict[str, Any]:
    """The Settings every replica is built from (secrets of the CLI itself left out)."""
    return settings.model_dump(mode="json", exclude={"admin_token", "data_dir"}, exclude_none=True)


def _ensure_housekeeper(settings: Settings) -> None:
    """The housekeeper and the queue actor (both named, detached, get-if-exists)."""
    from actors.housekeeper import ensure_housekeeper
    from actors.queue_actor import queue_actor_handle

    ensure_housekeeper(settings)
    queue_actor_handle(settings)


def _print_summary(
    api_url: str,
    dashboard_url: str | None,
    address: str,
    admin_token: str,
    *,
    demo_token: str | None,
    metrics: str | None = None,
) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("API", api_url)
    table.add_row("API docs", f"{api_url}/docs")
    table.add_row("Operations page", f"{api_url}/ops")
    if dashboard_url:
        table.add_row("Ray dashboard", dashboard_url)
    if metrics:
        table.add_row("Metrics (Prometheus)", metrics)
    table.add_row("Ray address", address)
    table.add_row("Admin token", admin_token)
    if demo_token:
        table.add_row("Demo user token", demo_token)
    console.print()
    console.print(table)
    console.print()
    console.print("Ray runs with token auth. For `ray job submit`, `serve` and the dashboard API:")
    console.print(f"  {AUTH_EXPORT_LINE}", highlight=False)
    if dashboard_url:
        console.print(f"  export RAY_API_SERVER_ADDRESS={dashboard_url}", highlight=False)
    console.print(
        "The dashboard in a browser asks for the token in ~/.ray/auth_token "
        "(`ray get-auth-token`).",
        highlight=False,
    )
    console.print()
    console.print("Try it:", highlight=False)
    token = demo_token or admin_token
    console.print(
        f"  curl -s -X POST {api_url}/scheduler/devices/allocate"
        f" -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json'"
        " -d '{\"durationMinutes\": 30}'",
        highlight=False,
        soft_wrap=True,
    )


# --------------------------------------------------------------------------- down


@app.command()
def down(data_dir: DataDirOption = None) -> None:
    """Stop what `up` started: the Serve app on an existing cluster, or the local Ray head,
    and the embedded servers."""
    folder = _data_dir(_settings(data_dir))
    record = UpRecord.load(folder)
    stopped: list[str] = []
    with _Steps() as steps:
        if record is not None and not record.local_head:
            _quiet_ray_logs()
            with steps.step("Serve app on the existing cluster") as step:
                with contextlib.suppress(Exception):
                    launcher.delete_app(record.ray_address)
                # PLUG-IN: also kill the detached housekeeper on an external cluster.
                step.done("deleted")
        with steps.step("Ray head") as step:
            if launcher.stop_head(folder):
                stopped.append("Ray head")
                step.done("stopped")
            else:
                step.done("not running")
        with steps.step("Embedded servers") as step:
            names = embedded_servers.stop_embedded_servers(folder)
            stopped.extend(names)
            step.done(", ".join(names) or "not running")
    UpRecord.path(folder).unlink(missing_ok=True)
    console.print(f"Stopped: {', '.join(stopped)}" if stopped else "Nothing was running.")


# --------------------------------------------------------------------------- status


@app.command()
def status(
    data_dir: DataDirOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Components and every URL as JSON.")
    ] = False,
) -> None:
    """Report each component and its URLs; exit 1 if any is down."""
    settings = _settings(data_dir)
    folder = _data_dir(settings)
    record = UpRecord.load(folder)
    embedded = embedded_servers.embedded_status(folder)
    rows: list[tuple[str, bool | None, str]] = []

    database_url = settings.database_url or embedded["postgres"]
    rows.append(("PostgreSQL", *_check_postgres(database_url, settings.database_password_file)))
    redis_url = settings.redis_url or embedded["redis"]
    rows.append(("Redis", *_check_redis(redis_url, settings.redis_password_file)))

    head = launcher.head_status(folder)
    if head is not None:
        rows.append(("Ray head", True, f"{head.address}, pid {head.pid}"))
        rows.append(("Ray dashboard", *_check_dashboard(head.dashboard_url)))
    elif record is not None and not record.local_head:
        rows.append(("Ray cluster", None, f"existing cluster at {record.ray_address}"))
    else:
        rows.append(("Ray head", False, "not running"))

    if record is not None:
        api_url = record.api_url
    elif head is not None:
        api_url = head.api_url
    else:
        api_url = f"http://127.0.0.1:{settings.http_port}"
    rows.append(("Serve app", *_check_http(f"{api_url}/healthz")))
    urls = {"api": api_url, "apiDocs": f"{api_url}/docs", "operations": f"{api_url}/ops"}
    if head is not None:
        urls |= {
            "dashboard": head.dashboard_url,
            "metrics": head.ports.metrics_url,
            "rayAddress": head.address,
        }
    if as_json:
        components = [{"name": n, "up": ok, "details": d} for n, ok, d in rows]
        print(json.dumps({"components": components, "urls": urls}, indent=2))
        if any(ok is False for _, ok, _ in rows):
            raise typer.Exit(1)
        return

    table = Table(title=f"PhoneFleet ({folder})")
    table.add_column("Component")
    table.add_column("State")
    table.add_column("Details", overflow="fold")
    marks = {True: "[green]up[/green]", False: "[red]down[/red]", None: "[yellow]?[/yellow]"}
    for name, ok, details in rows:
        table.add_row(name, marks[ok], escape(details))
    for name, url in urls.items():
        table.add_row(name, "", url)
    console.print(table)
    if any(ok is False for _, ok, _ in rows):
        raise typer.Exit(1)


def _check_postgres(url: str | None, password_file: Path | None) -> tuple[bool, str]:
    if url is None:
        return False, "not configured and no embedded server running"
    import psycopg

    from scheduler.config import with_password_from

    try:
        plain = with_password_from(url, password_file)
        plain = plain.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(plain, connect_timeout=3) as conn:
            version = conn.execute("SHOW server_version").fetchone()
    except RuntimeError as error:
        return False, str(error)
    except psycopg.Error as error:
        return False, f"{_redact(url)}: {str(error).strip().splitlines()[-1]}"
    return True, f"{_redact(url)} (PostgreSQL {version[0] if version else '?'})"


def _check_redis(url: str | None, password_file: Path | None) -> tuple[bool, str]:
    if url is None:
        return False, "not configured and no embedded server running"
    import redis

    from scheduler.config import with_password_from

    try:
        client = redis.Redis.from_url(
            with_password_from(url, password_file), socket_timeout=3, socket_connect_timeout=3
        )
        client.ping()
        client.close()
    except RuntimeError as error:
        return False, str(error)
    except redis.RedisError as error:
        return False, f"{_redact(url)}: {error}"
    return True, _redact(url)


def _check_dashboard(url: str) -> tuple[bool, str]:
    import httpx

    try:
        response = httpx.get(f"{url}/api/version", headers=launcher.auth_headers(), timeout=3)
    except httpx.HTTPError as error:
        return False, f"{url}: {error!r}"
    return response.status_code == 200, f"{url} (HTTP {response.status_code})"


def _check_http(url: str) -> tuple[bool, str]:
    import httpx

    try:
        response = httpx.get(url, timeout=3)
    except httpx.HTTPError as error:
        return False, f"{url}: {type(error).__name__}"
    return response.status_code == 200, f"{url} (HTTP {response.status_code})"


# --------------------------------------------------------------------------- token


@token_app.command("create")
def token_create(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant name or id.")],
    user: Annotated[str, typer.Option("--user", help="User id within the tenant.")],
    role: Annotated[str, typer.Option("--role", help="Role: user, service or admin.")] = "user",
    data_dir: DataDirOption = None,
) -> None:
    """Create an API token and print it (shown once; only its hash is stored)."""

    settings = _settings(data_dir)
    embedded = embedded_servers.embedded_status(_data_dir(settings))
    database_url = settings.database_url or embedded["postgres"]
    redis_url = settings.redis_url or embedded["redis"]
    if database_url is None or redis_url is None:
        console.print("[red]No database: run `phonefleet up` or set PHONEFLEET_DATABASE_URL.")
        raise typer.Exit(1)
    settings = settings.model_copy(update={"database_url": database_url, "redis_url": redis_url})
    token = _create_api_token(settings, tenant=tenant, user=user, role=role)
    console.print(token, highlight=False, soft_wrap=True)


def _create_api_token(settings: Settings, *, tenant: str, user: str, role: str) -> str:
    """Issue a token as the operator (who holds the database) would through the admin API."""
    from scheduler.domain.errors import SchedulerError
    from scheduler.domain.identity import Principal, Role
    from scheduler.services.commands import CreateToken
    from scheduler.services.tenancy import ADMIN_USER, find_tenant

    try:
        token_role = Role(role)
    except ValueError:
        console.print(f"[red]--role must be one of: {', '.join(r.value for r in Role)}")
        raise typer.Exit(2) from None

    async def issue(services: Services) -> str:
        found = await find_tenant(services.uow(), tenant)
        operator = Principal(found.id, ADMIN_USER, Role.ADMIN)
        handled = await services.commands.handle(CreateToken(found.id, user, token_role), operator)
        return str(handled.result.token)

    try:
        return _run_with_services(settings, issue)
    except SchedulerError as error:
        console.print(f"[red]{escape(error.detail)}")
        raise typer.Exit(1) from error


# --------------------------------------------------------------------------- helpers


class _Step:
    def __init__(self, progress: Progress, label: str) -> None:
        self._progress = progress
        self._label = label
        self._task = progress.add_task(label, total=1)
        self.finished = False

    def done(self, detail: str = "") -> None:
        self.finished = True
        suffix = f" [dim]{escape(detail)}[/dim]" if detail else ""
        self._progress.update(
            self._task, completed=1, description=f"[green]✓[/green] {self._label}{suffix}"
        )

    def failed(self) -> None:
        self.finished = True
        self._progress.update(self._task, completed=1, description=f"[red]✗[/red] {self._label}")


class _Steps:
    """A live list of steps with a spinner on the running one."""

    def __enter__(self) -> _Steps:
        self._progress = Progress(
            SpinnerColumn(finished_text=""),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[_Step]:
        step = _Step(self._progress, label)
        try:
            yield step
        except typer.Exit:
            step.failed()
            raise
        except Exception as error:
            step.failed()
            if os.environ.get("PHONEFLEET_DEBUG"):
                raise
            self._progress.stop()
            console.print(f"[red]{label} failed:[/red] {escape(str(error))}", highlight=False)
            raise typer.Exit(1) from error
        if not step.finished:
            step.done()


def _settings(data_dir: Path | None) -> Settings:
    from scheduler.config import Settings

    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    return settings


def _data_dir(settings: Settings) -> Path:
    folder = Path(settings.data_dir).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _quiet_ray_logs() -> None:
    """Keep Serve's INFO lines ("Started Serve…", "Application … is ready") off the steps.

    ``import ray.serve`` sets its logger to INFO, so lower it after that import.
    """
    import logging

    import ray.serve  # noqa: F401

    logging.getLogger("ray.serve").setLevel(logging.WARNING)


def _redact(url: str, mask: str = "***") -> str:
    """``url`` with its password replaced by ``mask`` (dropped when the mask is empty)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    userinfo = f"{user}:{mask}" if mask else user
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc}"))


def main() -> None:
    """Console-script entry point."""
    # Before anything imports ray: our heads run with token auth (see serve.launcher).
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    app()


if __name__ == "__main__":
    main()
