"""PhoneFleet's metrics on the running fleet: after a known workload (two grants and a release
on a pool of its own), the Prometheus endpoint `phonefleet up` prints shows them: the pool
node's devices by status, the lease events, the replicas' allocate latency, the gauges."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from scheduler.cli.cluster_ports import ClusterPorts
from tests.e2e.conftest import (
    E2E_HTTP_PORT,
    RunningFleet,
    auth,
    eventually,
    run_cli,
    seed_pool,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(\{(?P<tags>.*)\})? (?P<value>\S+)$")
TAG = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _scrape() -> list[tuple[str, dict[str, str], float]]:
    text = httpx.get(ClusterPorts.from_http_port(E2E_HTTP_PORT).metrics_url, timeout=10).text
    samples = []
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and match["name"].startswith("ray_phonefleet_"):
            tags = dict(TAG.findall(match["tags"] or ""))
            samples.append((match["name"], tags, float(match["value"])))
    return samples


def _sum(samples: list[tuple[str, dict[str, str], float]], name: str, **tags: str) -> float:
    return sum(
        value
        for n, t, value in samples
        if n == name and all(t.get(k) == v for k, v in tags.items())
    )


def test_the_metrics_show_a_known_workload(http: httpx.Client, fleet: RunningFleet) -> None:
    pool = seed_pool(http, fleet.admin_token, "metrics", devices=3)
    before = _scrape()
    grants = [
        http.post(
            "/scheduler/devices/allocate",
            headers=auth(pool.token),
            json={"durationMinutes": 30, "preferredSpecs": pool.specs},
        )
        for _ in range(2)
    ]
    assert all(g.status_code == 201 for g in grants), [g.text for g in grants]
    released = http.post(
        "/scheduler/devices/release",
        headers=auth(pool.token),
        json={"allocationId": grants[0].json()["allocationId"]},
    )
    assert released.status_code == 200, released.text
    node = pool.label["pool"]
    events = "ray_phonefleet_lease_events_total"
    latency = "ray_phonefleet_request_seconds_count"

    def shown() -> list[tuple[str, dict[str, str], float]] | None:
        now = _scrape()
        devices = {
            status: _sum(now, "ray_phonefleet_devices", node=node, status=status)
            for status in ("allocated", "available")
        }
        ready = (
            devices == {"allocated": 1, "available": 2}
            and _sum(now, events, kind="grant") >= _sum(before, events, kind="grant") + 2
            and _sum(now, events, kind="release") >= _sum(before, events, kind="release") + 1
            and _sum(now, latency, route="allocate") >= _sum(before, latency, route="allocate") + 2
            and _sum(now, latency, route="release") >= _sum(before, latency, route="release") + 1
        )
        return now if ready else None

    now = eventually(shown, timeout=60)

    assert _sum(now, "ray_phonefleet_leases_active") >= 1
    names = {name for name, _, _ in now}
    assert {
        "ray_phonefleet_outbox_backlog",
        "ray_phonefleet_outbox_relay_lag_seconds",
        "ray_phonefleet_housekeeper_tick_lag_seconds",
        "ray_phonefleet_node_heartbeats_missed",
    } <= names


def test_status_lists_every_url_as_json(fleet: RunningFleet) -> None:
    done = run_cli(fleet.env, "status", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    status = json.loads(done.stdout)
    ports = ClusterPorts.from_http_port(E2E_HTTP_PORT)
    assert status["urls"]["metrics"] == ports.metrics_url
    assert status["urls"]["operations"] == f"{fleet.api_url}/ops"
    assert status["urls"]["dashboard"].endswith(f":{ports.dashboard}")
    assert all(c["up"] is not False for c in status["components"])
