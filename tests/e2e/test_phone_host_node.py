"""A phone host's NodeActor runs on that host's Ray node, and only there.

A PhoneFleet of its own with ``node_actor_placement = "host"``, and a second Ray node on this
machine standing for the phone host ``phone-host-1`` (``ray start --address … --resources
'{"phonefleet-host:phone-host-1": 1}'``, ports of its own). A node registered with that host
gets its actor in that Ray node's processes; after a ``SIGKILL`` Ray brings it back there;
leases on its devices work end to end. A node whose host has no Ray node waits: its
registration answers at once and its devices stay ``provisioning``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from actors.names import host_resource, node_actor_name
from scheduler.cli.cluster_ports import ClusterPorts
from scheduler.config import Settings
from tests.e2e.conftest import auth, empty_database, eventually, fleet_env, new_token, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HTTP_PORT = int(os.environ.get("PHONEFLEET_E2E_HOST_HTTP_PORT", "8780"))
HOST_NODE_PORT = HTTP_PORT + 20  # the phone host's Ray node: ports of a slot of its own
HOST = "phone-host-1"


@dataclass
class HostFleet:
    api_url: str
    admin_token: str
    dashboard_url: str  # for Ray's state API (another cluster may run on this host)
    host_node_pid: int  # its `ray start --block` process
    host_ray_node_id: str
    env: dict[str, str]  # of its `phonefleet` commands


@pytest.fixture(scope="module")
def host_fleet(
    settings: Settings, server_urls: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostFleet]:
    import ray

    from actors.ray_client import connect
    from scheduler.cli.ray_head import head_status
    from scheduler.cli.ray_nodes import start_worker_node, stop_ray_node

    data_dir = tmp_path_factory.mktemp("host-fleet")
    host_dir = tmp_path_factory.mktemp("phone-host")
    token = "pf_e2e_" + secrets.token_urlsafe(16)
    with empty_database(server_urls[0]) as database_url:
        env = fleet_env(settings, database_url, data_dir, token, HTTP_PORT)
        env["PHONEFLEET_NODE_ACTOR_PLACEMENT"] = "host"
        try:
            up = run_cli(env, "up")
            assert up.returncode == 0, up.stdout + up.stderr
            head = head_status(data_dir)
            assert head is not None
            pid = start_worker_node(
                host_dir, head.address, ClusterPorts.from_http_port(HOST_NODE_PORT), host=HOST
            )
            connect(head.address)
            ray_node = eventually(lambda: _ray_node_offering(host_resource(HOST)), timeout=60)
            api_url = f"http://127.0.0.1:{HTTP_PORT}"
            yield HostFleet(api_url, token, head.dashboard_url, pid, ray_node, env)
        finally:
            ray.shutdown()
            stop_ray_node(host_dir)
            print(run_cli(env, "down").stdout)


def _ray_node_offering(resource: str) -> str | None:
    import ray

    for node in ray.nodes():
        if node["Alive"] and resource in node["Resources"]:
            return str(node["NodeID"])
    return None


def _actor(fleet: HostFleet, name: str) -> Any:
    from ray.util.state import list_actors

    found = list_actors(
        address=fleet.dashboard_url,
        filters=[("name", "=", name)],
        detail=True,
        raise_on_missing_output=False,
    )
    return found[0] if found else None


def _alive(fleet: HostFleet, name: str, not_pid: int | None = None) -> Any:
    actor = _actor(fleet, name)
    if actor is None or actor.state != "ALIVE" or actor.pid == not_pid:
        return None
    return actor


def _register(http: httpx.Client, admin: dict[str, str], host: str, devices: int) -> str:
    name = f"{host}-{uuid.uuid4().hex[:6]}"
    node = http.post(
        "/scheduler/nodes",
        headers=admin,
        json={
            "name": name,
            "host": host,
            "labels": {"pool": name},
            "capacity": {"cpuCores": 64, "memoryMB": 10**6, "storageMB": 10**8, "maxDevices": 8},
        },
    )
    assert node.status_code == 201, node.text
    node_id = str(node.json()["id"])
    spec = {"cpuCores": 2, "memoryMB": 2048, "storageMB": 8192, "androidVersion": "13"}
    added = http.post(
        f"/scheduler/nodes/{node_id}/devices", headers=admin, json={"count": devices, "spec": spec}
    )
    assert added.status_code == 201, added.text
    return node_id


def _devices(http: httpx.Client, admin: dict[str, str], node_id: str) -> dict[str, int]:
    """The node's devices counted by status."""
    r = http.get(f"/scheduler/nodes/{node_id}", headers=admin)
    assert r.status_code == 200, r.text
    return {status: n for status, n in r.json()["devices"].items() if n}


def _lease_round(http: httpx.Client, token: str, node_id: str) -> None:
    """Allocate a device of the node, release it, and see it reset back to available."""
    r = http.post("/scheduler/devices/allocate", headers=auth(token), json={"durationMinutes": 5})
    assert r.status_code == 201, r.text
    lease = r.json()
    assert lease["device"]["nodeId"] == node_id
    r = http.post(
        "/scheduler/devices/release",
        headers=auth(token),
        json={"allocationId": lease["allocationId"]},
    )
    assert r.status_code == 200, r.text


def test_a_hosts_node_actor_runs_on_its_ray_node_and_comes_back_there(
    host_fleet: HostFleet,
) -> None:
    admin = auth(host_fleet.admin_token)
    with httpx.Client(base_url=host_fleet.api_url, timeout=30) as http:
        node_id = _register(http, admin, HOST, devices=2)
        eventually(lambda: _devices(http, admin, node_id) == {"available": 2}, timeout=60)
        name = node_actor_name(uuid.UUID(node_id), 0)
        actor = eventually(lambda: _alive(host_fleet, name))
        assert actor.node_id == host_fleet.host_ray_node_id
        assert os.getsid(int(actor.pid)) == host_fleet.host_node_pid

        tenant = http.post(
            "/scheduler/admin/tenants",
            headers=admin,
            json={
                "name": f"t-{uuid.uuid4().hex[:6]}",
                "quota": {"maxDevices": 10, "cpuCores": 100, "memoryMB": 10**6, "storageMB": 10**8},
            },
        )
        assert tenant.status_code == 201, tenant.text
        token = new_token(http, host_fleet.admin_token, tenant.json()["id"], "owner")
        _lease_round(http, token, node_id)
        eventually(lambda: _devices(http, admin, node_id) == {"available": 2}, timeout=30)

        os.kill(int(actor.pid), signal.SIGKILL)
        back = eventually(lambda: _alive(host_fleet, name, not_pid=int(actor.pid)), timeout=60)
        assert back.node_id == host_fleet.host_ray_node_id
        assert os.getsid(int(back.pid)) == host_fleet.host_node_pid
        _lease_round(http, token, node_id)
        eventually(lambda: _devices(http, admin, node_id) == {"available": 2}, timeout=30)


def test_a_node_whose_host_has_no_ray_node_waits_for_it(host_fleet: HostFleet) -> None:
    admin = auth(host_fleet.admin_token)
    with httpx.Client(base_url=host_fleet.api_url, timeout=30) as http:
        node_id = _register(http, admin, "phone-host-absent", devices=1)
        assert _devices(http, admin, node_id) == {"provisioning": 1}
        actor = eventually(lambda: _actor(host_fleet, node_actor_name(uuid.UUID(node_id), 0)))
        assert actor.state in {"PENDING_CREATION", "DEPENDENCIES_UNREADY"}

    status = run_cli(host_fleet.env, "status", "--json")
    (actors,) = [c for c in json.loads(status.stdout)["components"] if c["name"] == "Node actors"]
    assert actors["up"] is None and "1 waiting for their host's Ray node" in actors["details"]
