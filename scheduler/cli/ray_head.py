"""A local Ray head for ``phonefleet up``: start it, and find it again.

It is a Ray node of :mod:`scheduler.cli.ray_nodes` (started and stopped by pid, never with
``ray stop``) with every port of :class:`~scheduler.cli.cluster_ports.ClusterPorts` set; its
record is ``<data_dir>/ray/head.json``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from scheduler.cli.cluster_ports import LOOPBACK, ClusterPorts
from scheduler.cli.processes import read_pid
from scheduler.cli.ray_layout import RayLayout
from scheduler.cli.ray_nodes import is_ray_start, start_ray_node


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
    running = head_status(data_dir)
    if running is not None:
        return running
    args = [
        "--head",
        f"--dashboard-host={LOOPBACK}",
        "--include-dashboard=true",
        *ports.ray_start_args(),
    ]
    pid = start_ray_node(
        data_dir,
        ports,
        args,
        env_extra,
        binds=ports.head_ports(),
        ready_port=ports.gcs,
        num_cpus=num_cpus,
        timeout_s=timeout_s,
    )
    layout = RayLayout.of(data_dir)
    info = HeadInfo(
        address=f"{LOOPBACK}:{ports.gcs}",
        dashboard_url=f"http://{LOOPBACK}:{ports.dashboard}",
        api_url=f"http://{LOOPBACK}:{ports.http}",
        pid=pid,
        temp_dir=str(layout.temp_dir),
        log_file=str(layout.log_file),
        ports=ports,
    )
    layout.info_file.write_text(info.to_json())
    return info


def head_status(data_dir: Path) -> HeadInfo | None:
    """The recorded head of ``data_dir`` if its ``ray start`` process is alive."""
    layout = RayLayout.of(data_dir)
    pid = read_pid(layout.pid_file)
    if pid is None or not is_ray_start(pid) or not layout.info_file.exists():
        return None
    info = HeadInfo.from_json(layout.info_file.read_text())
    return info if info.pid == pid else None
