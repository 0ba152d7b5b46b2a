"""The ports and folders of the clusters ``phonefleet`` starts on one host."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from scheduler.cli.cluster_ports import ClusterPorts
from scheduler.cli.ray_layout import RayLayout
from scheduler.config import Settings


def every_port(ports: ClusterPorts) -> set[int]:
    found: set[int] = set()
    fields = {f.name: getattr(ports, f.name) for f in dataclasses.fields(ports)}
    for name, port in fields.items():
        if name.startswith("min_"):
            found |= set(range(port, fields["max_" + name.removeprefix("min_")] + 1))
        elif name.startswith("direct_ingress_min_"):
            kind = name.removeprefix("direct_ingress_min_")
            found |= set(range(port, fields[f"direct_ingress_max_{kind}"] + 1))
        elif not name.startswith(("max_", "direct_ingress_max_")):
            found.add(port)
    return found


@pytest.mark.parametrize(("first", "second"), [(8000, 8020), (8740, 8780), (8780, 8800)])
def test_clusters_twenty_ports_apart_share_no_port(first: int, second: int) -> None:
    assert not every_port(ClusterPorts.from_http_port(first)) & every_port(
        ClusterPorts.from_http_port(second)
    )


def test_no_port_is_a_default_of_redis_or_ray() -> None:
    ports = every_port(ClusterPorts.from_http_port(8000))
    assert not ports & {6379, 8265, 52365, 44217, 44227, 8404, 9101, 8500, 10001}


def test_a_worker_node_gets_no_flag_of_the_head() -> None:
    ports = ClusterPorts.from_http_port(8800)
    args = ports.worker_start_args()
    assert not [a for a in args if a.startswith(("--port=", "--dashboard-port=", "--ray-client"))]
    assert f"--node-manager-port={ports.node_manager}" in args
    assert f"--metrics-export-port={ports.metrics_export}" in args
    assert set(ports.worker_ports().values()) <= set(ports.head_ports().values())


def test_http_ports_outside_the_layout_are_refused() -> None:
    with pytest.raises(ValueError, match="must lie in"):
        ClusterPorts.from_http_port(80)


def test_sockets_of_a_deep_data_folder_move_to_a_short_one(tmp_path: Path) -> None:
    assert RayLayout.of(Path("/root/.phonefleet")).run == Path("/root/.phonefleet/ray")
    deep = RayLayout.of(tmp_path / ("d" * 60))
    assert deep.run != deep.state and len(str(deep.run)) < 20
    assert RayLayout.of(tmp_path / ("d" * 60)).run == deep.run  # the same folder every time


def test_one_actor_per_host_rules_out_shards() -> None:
    with pytest.raises(ValueError, match="no shards"):
        Settings(node_actor_placement="host", node_actor_shards=2)
    assert Settings(node_actor_placement="host").node_actor_shards == 0
