"""The Ray side of ``phonefleet up/down/status``: a local Ray head and the Serve app on it.

Ports. :class:`ClusterPorts` sets every port a Ray head and Ray Serve open, derived from the
Serve HTTP port, so two clusters on one host never meet on a default port (GCS 6379 is
Redis's port; dashboard agent 52365, metric ports 44217/44227, HAProxy 8404/9101/8500 are
fixed defaults that make a second cluster fail in confusing ways). See
:meth:`ClusterPorts.from_http_port` for the layout.

Process model. :func:`start_head` runs ``ray start --head --block`` as a detached child in its
own session; its pid goes to ``<data_dir>/ray/head.pid``. That process owns the cluster: on
SIGTERM it kills the processes it started (we turn off its 30 s node drain, which cannot
finish on a one-node cluster), so :func:`stop_head` signals it and then kills any straggler of
*this* cluster: every process still in that session (Ray gives workers their own process
groups, not sessions), or a Ray/HAProxy process whose command line names this cluster's temp
dir. It never calls ``ray stop``, which kills every Ray cluster on the host. Unix socket paths
are short: 107 bytes for Ray's (``session_…/sockets/plasma_store``) and only 97 for HAProxy's
``log`` socket (``<dir>/<56-hex node id>/metrics.sock``), so the temp dirs live in
``<data_dir>/ray`` only when that path is short (``~/.phonefleet`` is); otherwise in
``/tmp/pf-<hash of data_dir>``, linked from ``<data_dir>/ray/run``.

Serve. The head runs with ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` (each ingress replica serves
HTTP itself, "direct ingress") and ``RAY_SERVE_ENABLE_HA_PROXY=1`` (the bundled HAProxy
listens on the Serve HTTP port and forwards to the replicas' own ports): the fast setup of
``notes/serve-performance.md``. These variables must be in the environment of ``ray start``
(the Serve controller, proxies and replicas read them at import).

Token auth, the decision. Ray 2.60 turns token auth on for a new head as soon as
``~/.ray/auth_token`` exists (and any local ``ray.init()`` creates that file), so leaving it
to chance gives a cluster whose auth depends on history. We always start the head with
``RAY_AUTH_MODE=token``: secure by default. The token is Ray's usual one — ``RAY_AUTH_TOKEN``,
else the file at ``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``, which
:func:`ensure_auth_token` creates (mode 0600) when none exists, because ``ray start`` refuses
to create it. Every client must then run with ``RAY_AUTH_MODE=token`` as well:
:func:`connect` sets it for our own drivers; ``phonefleet up`` prints
``export RAY_AUTH_MODE=token`` for ``ray job submit`` / ``serve`` CLI use; the dashboard
(also its JSON API) takes the token as ``Authorization: Bearer <token>``, the
``X-Ray-Authorization`` header or the ``ray-authentication-token`` cookie. The Serve HTTP port
itself has no Ray auth; the app authenticates its own callers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
NAMESPACE = "phonefleet"
APP_NAME = "phonefleet"
DEFAULT_IMPORT_PATH = "serve.deployment:app_builder"
AUTH_MODE_ENV = "RAY_AUTH_MODE"
AUTH_EXPORT_LINE = f"export {AUTH_MODE_ENV}=token"

#: AF_UNIX paths hold at most 107 bytes on Linux (108 with the NUL) ...
_UNIX_PATH_MAX = 107
#: ... and HAProxy accepts at most 97 for a `log` socket ("socket path … too long (max 97)").
_HAPROXY_UNIX_PATH_MAX = 97
#: Longest suffix Ray appends to its temp dir for a socket:
#: ``/session_2026-11-23_12-57-09_123456_<pid up to 7>/sockets/plasma_store``.
_RAY_SOCKET_SUFFIX = 64
#: Longest suffix Serve appends to the HAProxy dir: ``/<56-hex node id>/metrics.sock``.
_HAPROXY_SOCKET_SUFFIX = 1 + 56 + 1 + len("metrics.sock")
#: Longest suffix multiprocessing's forkserver appends to TMPDIR: ``/pymp-xxxxxxxx/listener-…``.
_TMPDIR_SOCKET_SUFFIX = 40

#: Serve settings of the fast path (``notes/serve-performance.md``) and quiet defaults.
SERVE_ENV: dict[str, str] = {
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_GRAFANA_HOST": "DISABLED",
    # `stop_head` stops the whole cluster: draining the head on SIGTERM (30 s by default)
    # can never finish there and only delays the stop.
    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
}


@dataclass(frozen=True)
class ClusterPorts:
    """Every port of one local Ray head with Serve; build it with :meth:`from_http_port`."""

    http: int  # Serve HTTP (HAProxy's frontend in HAProxy mode)
    dashboard: int
    gcs: int  # `ray start --port`
    ray_client_server: int
    node_manager: int
    object_manager: int
    dashboard_agent_listen: int  # the agent's HTTP port; `ray job submit` goes through it
    dashboard_agent_grpc: int
    runtime_env_agent: int
    metrics_export: int  # Prometheus text of Ray and application metrics
    dashboard_metric: int  # env DASHBOARD_METRIC_PORT
    autoscaler_metric: int  # env AUTOSCALER_METRIC_PORT
    haproxy_stats: int  # env RAY_SERVE_HAPROXY_STATS_PORT
    haproxy_metrics: int  # env RAY_SERVE_HAPROXY_METRICS_PORT
    fallback_proxy_http: int  # env RAY_SERVE_FALLBACK_PROXY_HTTP_PORT
    fallback_proxy_grpc: int  # env RAY_SERVE_FALLBACK_PROXY_GRPC_PORT
    grpc: int  # Serve gRPC options port (only bound when gRPC servicers are configured)
    redis: int  # embedded Redis, when PHONEFLEET_REDIS_URL is unset
    postgres: int  # embedded PostgreSQL's preferred port, when PHONEFLEET_DATABASE_URL is unset
    min_worker: int
    max_worker: int
    direct_ingress_min_http: int
    direct_ingress_max_http: int
    direct_ingress_min_grpc: int
    direct_ingress_max_grpc: int

    #: Single ports take ``http .. http + BLOCK - 1``.
    BLOCK = 20

    @property
    def metrics_url(self) -> str:
        """Prometheus text of Ray's and PhoneFleet's metrics (``phonefleet_*``)."""
        return f"http://{LOOPBACK}:{self.metrics_export}/metrics"

    #: Ranges live in 20000-32499 (below the kernel's ephemeral range, 32768+), in one of
    #: SLOTS slots of SLOT_SIZE ports: 150 worker ports, 50 + 50 direct-ingress ports.
    RANGE_BASE = 20000
    SLOT_SIZE = 250
    SLOTS = 50

    @classmethod
    def from_http_port(cls, http: int = 8000) -> ClusterPorts:
        """Derive every port from the Serve HTTP port.

        Single ports are ``http + 0 … http + 18`` (in field order); the worker and
        direct-ingress ranges sit in slot ``(http // 20) % 50`` of 20000-32499. Two clusters
        on one host are disjoint when their HTTP ports are at least 20 apart and less than
        1,000 apart (e.g. 8000, 8600, 8700, 8720); beyond that pick ports whose slots differ,
        or adjust fields with :func:`dataclasses.replace`.
        """
        if not 1024 <= http <= 32768 - cls.BLOCK:
            raise ValueError(f"http port {http} must lie in 1024..{32768 - cls.BLOCK}")
        base = cls.RANGE_BASE + cls.SLOT_SIZE * ((http // cls.BLOCK) % cls.SLOTS)
        return cls(
            http=http,
            dashboard=http + 1,
            gcs=http + 2,
            ray_client_server=http + 3,
            node_manager=http + 4,
            object_manager=http + 5,
            dashboard_agent_listen=http + 6,
            dashboard_agent_grpc=http + 7,
            runtime_env_agent=http + 8,
            metrics_export=http + 9,
            dashboard_metric=http + 10,
            autoscaler_metric=http + 11,
            haproxy_stats=http + 12,
            haproxy_metrics=http + 13,
            fallback_proxy_http=http + 14,
            fallback_proxy_grpc=http + 15,
            grpc=http + 16,
            redis=http + 17,
            postgres=http + 18,
            min_worker=base,
            max_worker=base + 149,
            direct_ingress_min_http=base + 150,
            direct_ingress_max_http=base + 199,
            direct_ingress_min_grpc=base + 200,
            direct_ingress_max_grpc=base + 249,
        )

    def ray_start_args(self) -> list[str]:
        """The port flags of ``ray start --head``."""
        return [
            f"--port={self.gcs}",
            f"--dashboard-port={self.dashboard}",
            f"--dashboard-agent-listen-port={self.dashboard_agent_listen}",
            f"--dashboard-agent-grpc-port={self.dashboard_agent_grpc}",
            f"--runtime-env-agent-port={self.runtime_env_agent}",
            f"--metrics-export-port={self.metrics_export}",
            f"--ray-client-server-port={self.ray_client_server}",
            f"--node-manager-port={self.node_manager}",
            f"--object-manager-port={self.object_manager}",
            f"--min-worker-port={self.min_worker}",
            f"--max-worker-port={self.max_worker}",
        ]

    def env(self) -> dict[str, str]:
        """The ports Ray and Serve only read from environment variables."""
        values = {
            "DASHBOARD_METRIC_PORT": self.dashboard_metric,
            "AUTOSCALER_METRIC_PORT": self.autoscaler_metric,
            "RAY_SERVE_HAPROXY_STATS_PORT": self.haproxy_stats,
            "RAY_SERVE_HAPROXY_METRICS_PORT": self.haproxy_metrics,
            "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": self.fallback_proxy_http,
            "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": self.fallback_proxy_grpc,
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": self.direct_ingress_min_http,
            "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": self.direct_ingress_max_http,
            "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": self.direct_ingress_min_grpc,
            "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": self.direct_ingress_max_grpc,
        }
        return {name: str(port) for name, port in values.items()}

    def head_ports(self) -> dict[str, int]:
        """The single ports the head and Serve bind on this host (not the embedded servers)."""
        skip = {"redis", "postgres", "grpc", "fallback_proxy_grpc"}
        return {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name not in skip and not field.name.startswith(("min_", "max_", "direct_"))
        }


@dataclass(frozen=True)
class HeadInfo:
    """A running local head, as recorded in ``<data_dir>/ray/head.json``."""

    address: str  # GCS address for ray.init(address=…)
    dashboard_url: str
    api_url: str  # the Serve HTTP endpoint
    pid: int  # the `ray start --block` process
    temp_dir: str
    log_file: str
    ports: ClusterPorts

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> HeadInfo:
        data = json.loads(text)
        data["ports"] = ClusterPorts(**data["ports"])
        return cls(**data)


@dataclass(frozen=True)
class _HeadLayout:
    """Where one data folder keeps its head's files."""

    state: Path  # <data_dir>/ray: pid, head.json, the `ray start` log
    run: Path  # short folder for sockets: `state` itself, or /tmp/pf-<hash>

    @classmethod
    def of(cls, data_dir: Path) -> _HeadLayout:
        state = data_dir.expanduser().resolve() / "ray"
        if cls._sockets_fit(state):
            return cls(state, state)
        digest = hashlib.sha256(str(state).encode()).hexdigest()[:10]
        return cls(state, Path("/tmp") / f"pf-{digest}")

    @staticmethod
    def _sockets_fit(run: Path) -> bool:
        """Whether every socket path under ``run`` stays within its limit."""
        base = len(str(run))
        return (
            base + len("/session") + _RAY_SOCKET_SUFFIX <= _UNIX_PATH_MAX
            and base + len("/tmp") + _TMPDIR_SOCKET_SUFFIX <= _UNIX_PATH_MAX
            and base + len("/hp") + _HAPROXY_SOCKET_SUFFIX <= _HAPROXY_UNIX_PATH_MAX
        )

    @property
    def pid_file(self) -> Path:
        return self.state / "head.pid"

    @property
    def info_file(self) -> Path:
        return self.state / "head.json"

    @property
    def log_file(self) -> Path:
        return self.state / "ray-start.log"

    @property
    def temp_dir(self) -> Path:
        return self.run / "session"

    @property
    def tmpdir(self) -> Path:
        return self.run / "tmp"

    @property
    def haproxy_dir(self) -> Path:
        return self.run / "hp"  # short: HAProxy's socket paths are limited to 97 bytes

    def prepare(self) -> None:
        for folder in (self.state, self.temp_dir, self.tmpdir, self.haproxy_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if self.run != self.state:
            link = self.state / "run"
            if not link.is_symlink():
                link.symlink_to(self.run, target_is_directory=True)

    def haproxy_env(self) -> dict[str, str]:
        """Move Serve's HAProxy config, sockets and state out of the shared /tmp/haproxy-serve."""
        folder = self.haproxy_dir
        return {
            "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(folder / "haproxy.cfg"),
            "RAY_SERVE_HAPROXY_SOCKET_PATH": str(folder / "admin.sock"),
            "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(folder),
            "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(folder / "server-state"),
            "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(folder / "metrics.sock"),
        }


# --------------------------------------------------------------------------- token auth


def auth_token() -> str | None:
    """The token Ray clients would use: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token."""
    if token := os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return token
    path_env = os.environ.get("RAY_AUTH_TOKEN_PATH")
    path = Path(path_env) if path_env else Path.home() / ".ray" / "auth_token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def ensure_auth_token() -> str:
    """Return the Ray token, creating ``~/.ray/auth_token`` (0600) when there is none."""
    if token := auth_token():
        return token
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        raise RuntimeError("RAY_AUTH_TOKEN_PATH names a missing or empty file")
    path = Path.home() / ".ray" / "auth_token"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_hex(32)  # what `ray get-auth-token --generate` writes
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return token


def use_token_auth() -> None:
    """Make this process a token-auth Ray client unless ``RAY_AUTH_MODE`` says otherwise.

    Ray reads the mode into its config when ``ray`` is first imported; if that already
    happened, re-read it the way Ray's own ``_enable_token_auth`` does.
    """
    if os.environ.get(AUTH_MODE_ENV) is not None:
        return
    os.environ[AUTH_MODE_ENV] = "token"
    if "ray" in sys.modules:
        from ray._raylet import Config  # type: ignore[attr-defined]

        Config.initialize("")


def auth_headers() -> dict[str, str]:
    """Headers for the dashboard's HTTP API."""
    token = auth_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


# --------------------------------------------------------------------------- head lifecycle


def start_head(
    data_dir: Path,
    ports: ClusterPorts,
    env_extra: Mapping[str, str] | None = None,
    *,
    num_cpus: int | None = None,
    timeout_s: float = 90.0,
) -> HeadInfo:
    """Start a local Ray head for ``data_dir`` (or return the one already running).

    ``env_extra`` is added to the head's environment (so to every Ray worker), after ours.
    """
    layout = _HeadLayout.of(data_dir)
    running = head_status(data_dir)
    if running is not None:
        return running
    layout.prepare()
    busy = [f"{name}={port}" for name, port in ports.head_ports().items() if not _port_free(port)]
    if busy:
        raise RuntimeError(f"cannot start the Ray head, ports in use: {', '.join(busy)}")
    ensure_auth_token()

    env = dict(os.environ)
    env.update(SERVE_ENV)
    env.update(ports.env())
    env.update(layout.haproxy_env())
    env.update(
        {
            AUTH_MODE_ENV: "token",
            "TMPDIR": str(layout.tmpdir),  # Ray's forkserver ignores RAY_TMPDIR
            "RAY_TMPDIR": str(layout.temp_dir),
            "PYTHONPATH": _prepend(str(_project_root()), env.get("PYTHONPATH")),
            # `ray job submit -- python …` runs its entrypoint through a shell on the head:
            # make `python` there this interpreter, not whatever PATH finds first.
            "PATH": _prepend(str(Path(sys.executable).parent), env.get("PATH")),
        }
    )
    env.update(env_extra or {})

    command = [
        _ray_executable(),
        "start",
        "--head",
        "--block",
        f"--dashboard-host={LOOPBACK}",
        "--include-dashboard=true",
        "--disable-usage-stats",
        f"--temp-dir={layout.temp_dir}",
        *ports.ray_start_args(),
    ]
    if num_cpus is not None:
        command.append(f"--num-cpus={num_cpus}")
    log_offset = layout.log_file.stat().st_size if layout.log_file.exists() else 0
    with layout.log_file.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=layout.state,
            start_new_session=True,  # own process group: survives our exit and Ctrl-C
        )
    layout.pid_file.write_text(f"{process.pid}\n")
    info = HeadInfo(
        address=f"{LOOPBACK}:{ports.gcs}",
        dashboard_url=f"http://{LOOPBACK}:{ports.dashboard}",
        api_url=f"http://{LOOPBACK}:{ports.http}",
        pid=process.pid,
        temp_dir=str(layout.temp_dir),
        log_file=str(layout.log_file),
        ports=ports,
    )
    try:
        _wait_head_ready(process, info, layout, log_offset, timeout_s)
    except BaseException:
        stop_head(data_dir)
        raise
    layout.info_file.write_text(info.to_json())
    return info


def head_status(data_dir: Path) -> HeadInfo | None:
    """The recorded head of ``data_dir`` if its ``ray start`` process is alive."""
    layout = _HeadLayout.of(data_dir)
    pid = _read_pid(layout.pid_file)
    if pid is None or not _is_ray_start(pid) or not layout.info_file.exists():
        return None
    info = HeadInfo.from_json(layout.info_file.read_text())
    return info if info.pid == pid else None


def stop_head(data_dir: Path, timeout_s: float = 60.0) -> bool:
    """Stop the head of ``data_dir`` and every process of its cluster; False if none ran.

    Also cleans up after a ``ray start`` process that died without stopping its children.
    """
    import psutil

    layout = _HeadLayout.of(data_dir)
    pid = _read_pid(layout.pid_file)
    stopped = False
    if pid is not None and _is_ray_start(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # drains the node, then kills what it started
        if not _wait_gone([pid], timeout_s):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _wait_gone([pid], 5.0)
        stopped = True
    stragglers = _cluster_processes(layout, pid)
    for process in stragglers:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    if stragglers and not _wait_gone([p.pid for p in stragglers], 5.0):
        for process in stragglers:
            with contextlib.suppress(psutil.Error):
                process.kill()
        _wait_gone([p.pid for p in stragglers], 5.0)
    layout.pid_file.unlink(missing_ok=True)
    layout.info_file.unlink(missing_ok=True)
    return stopped or bool(stragglers)


def cluster_pids(data_dir: Path) -> list[int]:
    """Pids of every live process of the cluster of ``data_dir`` (for checks and tests)."""
    layout = _HeadLayout.of(data_dir)
    pid = _read_pid(layout.pid_file)
    found = {p.pid for p in _cluster_processes(layout, pid)}
    if pid is not None and _is_ray_start(pid):
        found.add(pid)
    return sorted(found)


def _wait_head_ready(
    process: subprocess.Popen[bytes],
    info: HeadInfo,
    layout: _HeadLayout,
    log_offset: int,
    timeout_s: float,
) -> None:
    """Wait for ``ray start`` to report the runtime started and the GCS port to accept."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"ray start exited with {process.returncode}:\n"
                + _log_tail(layout.log_file, log_offset)
            )
        if _runtime_started(layout.log_file, log_offset) and _accepts(LOOPBACK, info.ports.gcs):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"Ray head not ready after {timeout_s:.0f}s:\n"
                + _log_tail(layout.log_file, log_offset)
            )
        time.sleep(0.2)


def _runtime_started(log_file: Path, offset: int) -> bool:
    with log_file.open("rb") as handle:
        handle.seek(offset)
        return b"Ray runtime started" in handle.read()


def _log_tail(log_file: Path, offset: int, lines: int = 30) -> str:
    with log_file.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _cluster_processes(layout: _HeadLayout, head_pid: int | None) -> list[Any]:
    """Live processes of this cluster other than the ``ray start`` process itself.

    The ``ray start`` process leads its own session; Ray gives workers their own process
    groups but they stay in that session. A straggler that left it is recognised by this
    cluster's temp or HAProxy dir on its command line.
    """
    import psutil

    markers = (str(layout.temp_dir), str(layout.haproxy_dir))
    own = os.getpid()
    found = []
    for process in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        pid = process.info["pid"]
        if pid in (own, head_pid) or process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            same_session = head_pid is not None and os.getsid(pid) == head_pid
        except OSError:
            continue
        cmdline = " ".join(process.info["cmdline"] or ())
        names_us = any(marker in cmdline for marker in markers)
        is_ray = process.info["name"] in {"raylet", "gcs_server", "haproxy"} or "ray" in cmdline
        if same_session or (names_us and is_ray):
            found.append(process)
    return found


def _wait_gone(pids: list[int], timeout_s: float) -> bool:
    """Wait until none of ``pids`` runs (zombies count as gone; our own children are reaped)."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for pid in pids:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _is_ray_start(pid: int) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = process.cmdline()
    except psutil.Error:
        return False
    return "start" in cmdline and "--head" in cmdline and any("ray" in part for part in cmdline)


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _ray_executable() -> str:
    candidate = Path(sys.executable).parent / "ray"
    if candidate.exists():
        return str(candidate)
    import shutil

    found = shutil.which("ray")
    if found is None:
        raise RuntimeError("the `ray` command is not installed next to this Python")
    return found


def _prepend(entry: str, search_path: str | None) -> str:
    return os.pathsep.join(part for part in (entry, search_path) if part)


def _project_root() -> Path:
    """The folder holding the ``serve`` package, so Ray workers import the project even
    when it is not installed."""
    return Path(__file__).resolve().parent.parent


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- Serve app


def connect(address: str, *, namespace: str = NAMESPACE) -> None:
    """Connect this process to the cluster at ``address`` as a driver (idempotent).

    Sets ``RAY_AUTH_MODE=token`` unless the caller chose a mode, so our drivers match heads
    started by :func:`start_head`.
    """
    use_token_auth()
    import ray

    if ray.is_initialized():
        return
    ray.init(
        address=address,
        namespace=namespace,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )


def deploy_app(
    address: str,
    ports: ClusterPorts,
    import_path: str = DEFAULT_IMPORT_PATH,
    args: Mapping[str, Any] | None = None,
    *,
    name: str = APP_NAME,
    route_prefix: str = "/",
    health_path: str | None = "/healthz",
    timeout_s: float = 180.0,
) -> str:
    """Deploy (or redeploy) the Serve app onto the cluster at ``address``; return its URL.

    ``import_path`` names an application builder ``f(args: dict) -> Application``. Waits
    until Serve reports the app RUNNING and, when ``health_path`` is set, until
    ``GET <url><health_path>`` answers 200 through the Serve HTTP port.
    """
    # Serve reads these at import, also in the driver; the head already has them.
    for key, value in {**SERVE_ENV, **ports.env()}.items():
        os.environ.setdefault(key, value)
    connect(address)
    from ray import serve

    serve.start(
        http_options={"host": LOOPBACK, "port": ports.http},
        grpc_options={"port": ports.grpc},
    )
    builder = _import_attr(import_path)
    serve.run(builder(dict(args or {})), name=name, route_prefix=route_prefix, blocking=False)
    url = f"http://{LOOPBACK}:{ports.http}"
    _wait_app_running(name, timeout_s)
    if health_path is not None:
        wait_http_ok(url + route_prefix.rstrip("/") + health_path, timeout_s)
    return url


def _import_attr(import_path: str) -> Callable[[dict[str, Any]], Any]:
    module_name, _, attr = import_path.partition(":")
    if not attr:
        module_name, _, attr = import_path.rpartition(".")
    builder: Callable[[dict[str, Any]], Any] = getattr(importlib.import_module(module_name), attr)
    return builder


def _wait_app_running(name: str, timeout_s: float) -> None:
    from ray import serve
    from ray.serve.schema import ApplicationStatus

    deadline = time.monotonic() + timeout_s
    while True:
        app = serve.status().applications.get(name)
        status = app.status if app is not None else None
        if status == ApplicationStatus.RUNNING:
            return
        if app is not None and status == ApplicationStatus.DEPLOY_FAILED:
            raise RuntimeError(f"Serve app {name!r} failed to deploy: {app.message}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"Serve app {name!r} not RUNNING after {timeout_s:.0f}s: {status}")
        time.sleep(0.5)


def wait_http_ok(url: str, timeout_s: float = 60.0) -> None:
    """Poll ``url`` until it answers 200 (HAProxy picks up new replicas within ~1 s)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while True:
        try:
            response = httpx.get(url, timeout=5.0)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as error:
            last = repr(error)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not healthy after {timeout_s:.0f}s: {last}")
        time.sleep(0.25)


def delete_app(address: str, name: str = APP_NAME) -> None:
    """Remove the Serve app (the head keeps running)."""
    connect(address)
    from ray import serve

    serve.delete(name)
