"""Fleet statistics on real PostgreSQL, each checked against sums computed from the records
by SQL of the test's own: cluster capacity, usage and device counts; hourly usage trends of a
node and of the cluster; the nodes list's usage, region and filters."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.services.fleet import FleetTotal, list_available_devices
from scheduler.services.statistics import fleet_gauges
from tests.builders import auth, in_pool, new_pool, new_tenant, new_token, run_sql, settle

pytestmark = pytest.mark.integration


async def _lease_and_release(
    client: httpx.AsyncClient, admin: str, devices: int, keep: int
) -> tuple[Any, list[dict[str, Any]]]:
    pool = await new_pool(client, admin, devices=devices)
    tenant = await new_tenant(client, admin)
    token = await new_token(client, admin, tenant["id"], "stats-user")
    grants = []
    for _ in range(devices):
        r = await client.post(
            "/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool)
        )
        assert r.status_code == 201, r.text
        grants.append(r.json())
    for grant in grants[keep:]:
        r = await client.post(
            "/scheduler/devices/release",
            headers=auth(token),
            json={"allocationId": grant["allocationId"]},
        )
        assert r.status_code == 200, r.text
    return pool, grants


async def test_cluster_stats_equal_the_sums_of_the_records(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    await _lease_and_release(client, admin_token, devices=3, keep=2)

    r = await client.get("/scheduler/resources/cluster-stats", headers=auth(admin_token))

    assert r.status_code == 200, r.text
    stats = r.json()
    (nodes,) = await run_sql(
        services,
        "SELECT count(*) AS total, sum(cpu_cores) AS cpu, sum(memory_mb) AS mem,"
        " sum(storage_mb) AS sto, sum(max_devices) AS slots,"
        " count(*) FILTER (WHERE status IN ('ready', 'cordoned')) AS online FROM nodes"
        " WHERE status <> 'removed'",
    )
    (leases,) = await run_sql(
        services,
        "SELECT count(*) AS n, coalesce(sum(cpu_cores), 0) AS cpu,"
        " coalesce(sum(memory_mb), 0) AS mem FROM allocations WHERE status = 'active'",
    )
    devices = await run_sql(services, "SELECT status, count(*) AS n FROM devices GROUP BY status")
    assert stats["nodes"]["total"] == nodes["total"] and stats["nodes"]["online"] == nodes["online"]
    assert stats["capacity"] == {
        "cpuCores": nodes["cpu"],
        "memoryMB": nodes["mem"],
        "storageMB": nodes["sto"],
        "maxDevices": nodes["slots"],
    }
    assert stats["usage"]["devices"] == leases["n"] >= 2
    assert stats["usage"]["cpuCores"] == pytest.approx(leases["cpu"])
    assert stats["usage"]["memoryMB"] == leases["mem"]
    assert stats["devices"] == {d["status"]: d["n"] for d in devices}
    assert stats["utilization"]["cpu"] == pytest.approx(leases["cpu"] / nodes["cpu"], abs=1e-6)


async def test_a_nodes_usage_trend_equals_the_overlaps_of_its_usage_records(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool, _ = await _lease_and_release(client, admin_token, devices=4, keep=0)

    r = await client.get(
        f"/scheduler/nodes/{pool.node['id']}/usage-trend",
        params={"hours": 3},
        headers=auth(admin_token),
    )

    assert r.status_code == 200, r.text
    trend = r.json()
    assert trend["hours"] == 3 and len(trend["buckets"]) == 3
    for bucket in trend["buckets"]:
        (expected,) = await run_sql(
            services,
            "SELECT count(*) AS leases, coalesce(sum(extract(epoch FROM"
            " least(u.ended_at, %(hour)s + interval '1 hour') - greatest(u.started_at, %(hour)s)"
            ")), 0) AS seconds FROM usage_records u JOIN devices d ON d.id = u.device_id"
            " WHERE d.node_id = %(node)s AND ((u.started_at < %(hour)s + interval '1 hour'"
            " AND u.ended_at > %(hour)s) OR (u.started_at = u.ended_at"
            " AND u.started_at >= %(hour)s AND u.started_at < %(hour)s + interval '1 hour'))",
            {"hour": datetime.fromisoformat(bucket["hour"]), "node": uuid.UUID(pool.node["id"])},
        )
        assert bucket["leases"] == expected["leases"]
        assert bucket["deviceSeconds"] == pytest.approx(float(expected["seconds"]), abs=1e-3)
    assert sum(b["leases"] for b in trend["buckets"]) >= 4  # each lease, in every hour it ran
    assert max(b["peakConcurrent"] for b in trend["buckets"]) == 4  # all four held at once


async def test_the_cluster_trend_counts_running_leases_and_the_nodes_list_shows_usage(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool, grants = await _lease_and_release(client, admin_token, devices=2, keep=2)
    region = {"region": f"r-{uuid.uuid4().hex[:8]}"}
    await run_sql(
        services,
        "UPDATE nodes SET labels = labels || %(labels)s::jsonb WHERE id = %(id)s",
        {"labels": json.dumps(region), "id": uuid.UUID(pool.node["id"])},
    )

    trend = (
        await client.get("/scheduler/cluster/usage-trend?hours=1", headers=auth(admin_token))
    ).json()
    listed = await client.get(
        "/scheduler/nodes",
        params={"label": f"region:{region['region']}", "status": "ready"},
        headers=auth(admin_token),
    )
    summary = await client.get("/scheduler/nodes/stats/summary", headers=auth(admin_token))

    (current,) = trend["buckets"]
    (running,) = await run_sql(
        services, "SELECT count(*) AS n FROM allocations WHERE status = 'active'"
    )
    assert current["leases"] >= running["n"] >= 2 and current["deviceSeconds"] > 0
    assert listed.status_code == 200, listed.text
    (node,) = listed.json()
    assert node["id"] == pool.node["id"] and node["region"] == region["region"]
    assert node["usage"]["devices"] == 2 and node["usage"]["cpuCores"] == 4
    assert summary.json()["byRegion"][region["region"]] == {
        "nodes": 1,
        "maxDevices": 2,
        "leasedDevices": 2,
    }
    cordoned = await client.get(
        "/scheduler/nodes",
        params={"label": f"region:{region['region']}", "status": "cordoned"},
        headers=auth(admin_token),
    )
    assert cordoned.json() == []
    for grant in grants:
        await client.post(
            f"/scheduler/allocations/{grant['allocationId']}/release", headers=auth(admin_token)
        )


async def test_statistics_refuse_bad_input_and_non_admins(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    tenant = await new_tenant(client, admin_token)
    user = await new_token(client, admin_token, tenant["id"], "curious")
    admin = auth(admin_token)

    too_long = await client.get("/scheduler/cluster/usage-trend?hours=169", headers=admin)
    none = await client.get("/scheduler/cluster/usage-trend?hours=0", headers=admin)
    unknown = await client.get(f"/scheduler/nodes/{uuid.uuid4()}/usage-trend", headers=admin)
    bad_filter = await client.get("/scheduler/nodes?label=nocolon", headers=admin)
    bad_status = await client.get("/scheduler/nodes?status=asleep", headers=admin)
    forbidden = await client.get("/scheduler/resources/cluster-stats", headers=auth(user))

    assert (too_long.status_code, none.status_code) == (422, 422)
    assert unknown.status_code == 404 and unknown.json()["code"] == "node_not_found"
    assert bad_filter.status_code == 422 and bad_status.status_code == 422
    assert forbidden.status_code == 403


async def test_the_count_of_available_devices_leaves_out_nodes_that_are_not_ready(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    cordoned = await new_pool(client, admin_token, devices=3)
    await new_pool(client, admin_token, devices=2)
    await client.post(f"/scheduler/nodes/{cordoned.node['id']}/cordon", headers=auth(admin_token))

    await settle(services)  # no device of an earlier test still being reset
    counted = await list_available_devices(services.uow(), {}, 10, None)
    joined = await run_sql(
        services,
        "SELECT count(*) AS n FROM devices d JOIN nodes n ON n.id = d.node_id"
        " WHERE d.status = 'available' AND n.status = 'ready'",
    )
    remembered = FleetTotal(ttl=60.0)
    first = await list_available_devices(services.uow(), {}, 10, None, remembered)
    await new_pool(client, admin_token, devices=1)
    await settle(services)
    second = await list_available_devices(services.uow(), {}, 10, None, remembered)

    assert counted.total == joined[0]["n"]
    assert first.total == second.total == counted.total  # the second, remembered
    fresh = await list_available_devices(services.uow(), {}, 10, None)
    assert fresh.total == counted.total + 1
    labelled = await client.get(
        "/scheduler/devices/available",
        headers=auth(admin_token),
        params={"label": f"pool:{cordoned.label['pool']}"},
    )
    assert labelled.json()["total"] == 0


async def test_the_metrics_gauges_read_the_fleet_as_it_is(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=3)
    tenant = await new_tenant(client, admin_token)
    token = await new_token(client, admin_token, tenant["id"], "gauged")
    await settle(services)
    r = await client.post("/scheduler/devices/allocate", headers=auth(token), json=in_pool(pool))
    assert r.status_code == 201, r.text

    gauges = await fleet_gauges(services.uow(), services.clock(), timedelta(seconds=30))

    name = pool.node["name"]
    assert gauges.devices[(name, "allocated")] == 1
    assert gauges.devices[(name, "available")] == 2
    assert gauges.leases_by_tier[tenant["tier"]] >= 1
    assert gauges.outbox_backlog >= 1  # nothing relays in this suite
    assert gauges.relay_lag_seconds >= 0


async def test_the_newest_events_are_listed_newest_first_for_admins_only(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    pool = await new_pool(client, admin_token, devices=1)

    r = await client.get("/scheduler/events", headers=auth(admin_token), params={"limit": 50})

    assert r.status_code == 200, r.text
    events = r.json()
    assert len(events) == 50
    assert [e["seq"] for e in events] == sorted((e["seq"] for e in events), reverse=True)
    registered = [e["aggregateId"] for e in events if e["type"] == "node.registered"]
    assert pool.node["id"] in registered
    tenant = await new_tenant(client, admin_token)
    user = await new_token(client, admin_token, tenant["id"], "curious")
    assert (await client.get("/scheduler/events", headers=auth(user))).status_code == 403
    too_many = await client.get(
        "/scheduler/events", headers=auth(admin_token), params={"limit": 501}
    )
    assert too_many.status_code == 422
