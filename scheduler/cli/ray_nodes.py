"""Ray nodes this machine starts for PhoneFleet, each owned by one ``ray start --block``
process: the head (:mod:`scheduler.cli.ray_head`) and worker nodes that join it — a phone
host's node offering ``phonefleet-host:<host>`` (:func:`start_worker_node`).

A node's ``ray start`` process runs as a detached child in its own session; its pid goes to
``<data_dir>/ray/node.pid``. On SIGTERM it kills the processes it started (we turn off its
30 s drain, which cannot finish on a one-node cluster), so :func:`stop_ray_node` signals it
and then kills any straggler of *this* node: every process still in that session (Ray gives
workers their own process groups, not sessions), or a Ray/HAProxy process whose command line
names this node's temp dir. It never calls ``ray stop``, which kills every Ray node on the
host. Where the files go: :mod:`scheduler.cli.ray_layout`.

Serve. Every node runs with ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` (each ingress replica serves
HTTP itself, "direct ingress") and ``RAY_SERVE_ENABLE_HA_PROXY=1`` (the bundled HAProxy
listens on the Serve HTTP port and forwards to the replicas' own ports): the fast setup of
``notes/serve-performance.md``. These variables must be in the environment of ``ray start``
(the Serve controller, proxies and replicas read them at import). Auth: every node runs with
``RAY_AUTH_MODE=token`` (see :mod:`actors.ray_client`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from actors.names import host_resource
from actors.ray_client import AUTH_MODE_ENV, ensure_auth_token
from scheduler.cli.cluster_ports import LOOPBACK, ClusterPorts, accepts, port_free
from scheduler.cli.processes import read_pid, wait_gone
from scheduler.cli.ray_layout import RayLayout

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


def start_ray_node(
    data_dir: Path,
    ports: ClusterPorts,
    start_args: Sequence[str],
    env_extra: Mapping[str, str] | None = None,
    *,
    binds: Mapping[str, int],
    ready_port: int,
    num_cpus: int | None = None,
    timeout_s: float = 90.0,
) -> int:
    """Run ``ray start --block <start_args>`` for ``data_dir``; return its pid once the log
    says the runtime started and ``ready_port`` accepts. Refused when a port of ``binds`` (the
    single ports this node binds, by name) is taken.

    ``env_extra`` is added to the node's environment (so to every Ray worker), after ours.
    """
    busy = [f"{name}={port}" for name, port in binds.items() if not port_free(port)]
    if busy:
        raise RuntimeError(f"cannot start the Ray node, ports in use: {', '.join(busy)}")
    layout = RayLayout.of(data_dir)
    layout.prepare()
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
        "--block",
        "--disable-usage-stats",
        f"--temp-dir={layout.temp_dir}",
        *start_args,
        *([f"--num-cpus={num_cpus}"] if num_cpus is not None else []),
    ]
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
    try:
        _wait_ready(process, layout, log_offset, ready_port, timeout_s)
    except BaseException:
        stop_ray_node(data_dir)
        raise
    return process.pid


def start_worker_node(
    data_dir: Path,
    head_address: str,
    ports: ClusterPorts,
    *,
    host: str | None = None,
    num_cpus: int | None = None,
    timeout_s: float = 90.0,
) -> int:
    """Join a Ray node for ``data_dir`` to the cluster at ``head_address``; its pid.

    With ``host``, the node offers ``phonefleet-host:<host>`` (:func:`actors.names.host_resource`):
    it stands for that phone host, and with ``node_actor_placement = "host"`` the NodeActors
    of that host's nodes run on it. Its ports are those of ``ports`` a worker node binds.
    """
    running = read_pid(RayLayout.of(data_dir).pid_file)
    if running is not None and is_ray_start(running):
        return running
    args = [f"--address={head_address}", *ports.worker_start_args()]
    if host is not None:
        args.append(f"--resources={json.dumps({host_resource(host): 1})}")
    return start_ray_node(
        data_dir,
        ports,
        args,
        binds=ports.worker_ports(),
        ready_port=ports.node_manager,
        num_cpus=num_cpus,
        timeout_s=timeout_s,
    )


def stop_ray_node(data_dir: Path, timeout_s: float = 60.0) -> bool:
    """Stop the Ray node of ``data_dir`` (for the head: its whole cluster) and every process
    it started; False if none ran. Also cleans up after a ``ray start`` process that died
    without stopping its children.
    """
    import psutil

    layout = RayLayout.of(data_dir)
    pid = read_pid(layout.pid_file)
    stopped = False
    if pid is not None and is_ray_start(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # drains the node, then kills what it started
        if not wait_gone([pid], timeout_s):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            wait_gone([pid], 5.0)
        stopped = True
    stragglers = _node_processes(layout, pid)
    for process in stragglers:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    if stragglers and not wait_gone([p.pid for p in stragglers], 5.0):
        for process in stragglers:
            with contextlib.suppress(psutil.Error):
                process.kill()
        wait_gone([p.pid for p in stragglers], 5.0)
    layout.pid_file.unlink(missing_ok=True)
    layout.info_file.unlink(missing_ok=True)
    return stopped or bool(stragglers)


def _wait_ready(
    process: subprocess.Popen[bytes],
    layout: RayLayout,
    log_offset: int,
    ready_port: int,
    timeout_s: float,
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"ray start exited with {process.returncode}:\n"
                + _log_tail(layout.log_file, log_offset)
            )
        if _runtime_started(layout.log_file, log_offset) and accepts(LOOPBACK, ready_port):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"Ray node not ready after {timeout_s:.0f}s:\n"
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


def _node_processes(layout: RayLayout, start_pid: int | None) -> list[Any]:
    """Live processes of this Ray node other than the ``ray start`` process itself.

    The ``ray start`` process leads its own session; Ray gives workers their own process
    groups but they stay in that session. A straggler that left it is recognised by this
    node's temp or HAProxy dir on its command line.
    """
    import psutil

    markers = (str(layout.temp_dir), str(layout.haproxy_dir))
    own = os.getpid()
    found = []
    for process in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        pid = process.info["pid"]
        if pid in (own, start_pid) or process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            same_session = start_pid is not None and os.getsid(pid) == start_pid
        except OSError:
            continue
        cmdline = " ".join(process.info["cmdline"] or ())
        names_us = any(marker in cmdline for marker in markers)
        is_ray = process.info["name"] in {"raylet", "gcs_server", "haproxy"} or "ray" in cmdline
        if same_session or (names_us and is_ray):
            found.append(process)
    return found


def is_ray_start(pid: int) -> bool:
    """Whether ``pid`` is a live ``ray start --block`` process."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = process.cmdline()
    except psutil.Error:
        return False
    return "start" in cmdline and "--block" in cmdline and any("ray" in part for part in cmdline)


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
    """The folder holding the project's packages, so Ray workers import the project even
    when it is not installed."""
    return Path(__file__).resolve().parents[2]
