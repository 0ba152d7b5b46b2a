"""``phonefleet``: bring the whole service up on one machine, take it down, and report on it.

``phonefleet up`` starts, in order: an embedded PostgreSQL and Redis in the data folder (only
when ``PHONEFLEET_DATABASE_URL`` / ``PHONEFLEET_REDIS_URL`` are unset), the migrations, the
admin token, a local Ray head (or, with ``RAY_ADDRESS`` set, an existing cluster), the Serve
app, the housekeeper and the inbox. Every step is idempotent, so running ``up`` again repairs or
redeploys. What ``up`` started is recorded in ``<data_dir>/up.json``; ``down`` stops exactly
that, by pid. ``status`` checks each component and exits non-zero if one is down.

Ray runs with token auth (see :mod:`actors.ray_client`): ``up`` prints the environment line that
``ray job submit`` and other Ray clients need.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from actors.ray_client import AUTH_MODE_ENV, connect
from scheduler.cli import bring_up, health, ray_head, ray_nodes, serve_app
from scheduler.cli.admin import bootstrap_admin_token, create_api_token
from scheduler.cli.bring_up import UpRecord
from scheduler.cli.cluster_ports import LOOPBACK, ClusterPorts
from scheduler.cli.demo_fleet import seed_demo_fleet
from scheduler.cli.embedded_postgres import start_embedded_postgres
from scheduler.cli.embedded_redis import start_embedded_redis
from scheduler.cli.embedded_servers import embedded_status, stop_embedded_servers
from scheduler.cli.steps import Steps, console
from scheduler.config import redacted_url

if TYPE_CHECKING:
    from scheduler.config import Settings

app = typer.Typer(
    name="phonefleet",
    help="PhoneFleet: a Ray-native scheduler for cloud-phone fleets.",
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")

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


@app.command()
def up(
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed a simulated fleet to play with.")
    ] = False,
    data_dir: DataDirOption = None,
    import_path: Annotated[
        str, typer.Option("--app", hidden=True, help="Serve application builder.")
    ] = serve_app.APP_IMPORT_PATH,
) -> None:
    """Start PhoneFleet: databases, migrations, Ray head, Serve app and housekeeper."""
    _quiet_ray_logs()
    settings = _settings(data_dir)
    folder = _data_dir(settings)
    ports = ClusterPorts.from_http_port(settings.http_port)
    external_ray = os.environ.get("RAY_ADDRESS")
    embedded_postgres = settings.database_url is None
    embedded_redis = settings.redis_url is None

    with Steps() as steps:
        database_url = settings.database_url
        if database_url is None:
            with steps.step("Embedded PostgreSQL") as step:
                database_url = start_embedded_postgres(folder, port=ports.postgres)
                step.done(redacted_url(database_url))
        redis_url = settings.redis_url
        if redis_url is None:
            with steps.step("Embedded Redis") as step:
                redis_url = start_embedded_redis(folder, ports.redis)
                step.done(redis_url)
        settings = settings.model_copy(
            update={"database_url": database_url, "redis_url": redis_url, "data_dir": folder}
        )
        if not external_ray:  # the files are on this machine only
            settings = bring_up.passwords_to_files(settings, folder)

        with steps.step("Database migrations") as step:
            bring_up.run_migrations(settings.require_urls()[0])
            step.done("at head")

        with steps.step("Admin token") as step:
            admin_token = bring_up.admin_token(settings, folder)
            bootstrap_admin_token(settings, admin_token)
            step.done("from PHONEFLEET_ADMIN_TOKEN" if settings.admin_token else "ready")

        if external_ray:
            address, dashboard_url = external_ray, None
            with steps.step("Ray cluster") as step:
                connect(address)
                step.done(f"existing cluster at {address}")
        else:
            with steps.step("Ray head") as step:
                head = ray_head.start_head(folder, ports, bring_up.job_env(settings))
                address, dashboard_url = head.address, head.dashboard_url
                step.done(f"{address} (pid {head.pid})")

        with steps.step("Serve app") as step:
            api_url = serve_app.deploy_app(address, ports, import_path, bring_up.app_args(settings))
            step.done(api_url)

        with steps.step("Housekeeper, queue and inbox") as step:
            bring_up.ensure_housekeeper(settings)
            sources = "RabbitMQ and Redis" if settings.rabbitmq_url else "Redis"
            step.done(f"running (inbox reads {sources})")

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
    bring_up.print_summary(
        api_url, dashboard_url, address, admin_token, demo_token=demo_token, metrics=metrics_url
    )


@app.command()
def down(data_dir: DataDirOption = None) -> None:
    """Stop what `up` started: the Serve app on an existing cluster, or the local Ray head,
    and the embedded servers."""
    folder = _data_dir(_settings(data_dir))
    record = UpRecord.load(folder)
    stopped: list[str] = []
    with Steps() as steps:
        if record is not None and not record.local_head:
            _quiet_ray_logs()
            with steps.step("Serve app on the existing cluster") as step:
                with contextlib.suppress(Exception):
                    serve_app.delete_app(record.ray_address)
                # PLUG-IN: also kill the detached housekeeper on an external cluster.
                step.done("deleted")
        with steps.step("Ray head") as step:
            if ray_nodes.stop_ray_node(folder):
                stopped.append("Ray head")
                step.done("stopped")
            else:
                step.done("not running")
        with steps.step("Embedded servers") as step:
            names = stop_embedded_servers(folder)
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
    embedded = embedded_status(folder)
    rows: list[tuple[str, bool | None, str]] = []

    database_url = settings.database_url or embedded["postgres"]
    rows.append(
        ("PostgreSQL", *health.check_postgres(database_url, settings.database_password_file))
    )
    redis_url = settings.redis_url or embedded["redis"]
    rows.append(("Redis", *health.check_redis(redis_url, settings.redis_password_file)))

    head = ray_head.head_status(folder)
    if head is not None:
        rows.append(("Ray head", True, f"{head.address}, pid {head.pid}"))
        rows.append(("Ray dashboard", *health.check_dashboard(head.dashboard_url)))
        rows.append(("Node actors", *health.check_node_actors(head.dashboard_url)))
    elif record is not None and not record.local_head:
        rows.append(("Ray cluster", None, f"existing cluster at {record.ray_address}"))
    else:
        rows.append(("Ray head", False, "not running"))

    if record is not None:
        api_url = record.api_url
    elif head is not None:
        api_url = head.api_url
    else:
        api_url = f"http://{LOOPBACK}:{settings.http_port}"
    rows.append(("Serve app", *health.check_http(f"{api_url}/healthz")))
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


@token_app.command("create")
def token_create(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant name or id.")],
    user: Annotated[str, typer.Option("--user", help="User id within the tenant.")],
    role: Annotated[str, typer.Option("--role", help="Role: user, service or admin.")] = "user",
    data_dir: DataDirOption = None,
) -> None:
    """Create an API token and print it (shown once; only its hash is stored)."""
    from scheduler.domain.errors import SchedulerError
    from scheduler.domain.identity import Role

    try:
        token_role = Role(role)
    except ValueError:
        console.print(f"[red]--role must be one of: {', '.join(r.value for r in Role)}")
        raise typer.Exit(2) from None
    settings = _settings(data_dir)
    embedded = embedded_status(_data_dir(settings))
    database_url = settings.database_url or embedded["postgres"]
    redis_url = settings.redis_url or embedded["redis"]
    if database_url is None or redis_url is None:
        console.print("[red]No database: run `phonefleet up` or set PHONEFLEET_DATABASE_URL.")
        raise typer.Exit(1)
    settings = settings.model_copy(update={"database_url": database_url, "redis_url": redis_url})
    try:
        token = create_api_token(settings, tenant=tenant, user=user, role=token_role)
    except SchedulerError as error:
        console.print(f"[red]{escape(error.detail)}")
        raise typer.Exit(1) from error
    console.print(token, highlight=False, soft_wrap=True)


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


def main() -> None:
    """Console-script entry point."""
    # Before anything imports ray: our heads run with token auth (see actors.ray_client).
    os.environ.setdefault(AUTH_MODE_ENV, "token")
    app()


if __name__ == "__main__":
    main()
