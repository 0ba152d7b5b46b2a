"""Fleet statistics (admin reads): the cluster's capacity, usage and utilization, per-node
usage, and hourly usage trends, all computed from the records (leases and usage records)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.domain.errors import InvalidRequest, NodeNotFound
from scheduler.domain.events import EventRecord
from scheduler.domain.identity import Principal, require_admin, scope_of
from scheduler.domain.tasks import Task, TaskStatus
from scheduler.domain.usage_stats import (
    ClusterStats,
    FleetGauges,
    HourBucket,
    NodeTotals,
    UsageTotal,
    cluster_stats,
    hourly_trend,
    trend_start,
)
from scheduler.services.ports import UnitOfWork


async def fleet_stats(uow: UnitOfWork, principal: Principal) -> ClusterStats:
    """Raises:
    Forbidden: the caller is not an admin.
    """
    require_admin(principal)
    async with uow:
        nodes = await uow.stats.node_totals()
        devices = await uow.stats.device_counts()
    return cluster_stats(list(nodes.values()), devices)


async def node_totals(uow: UnitOfWork) -> dict[uuid.UUID, NodeTotals]:
    """Each node's capacity and what its active leases use."""
    async with uow:
        return await uow.stats.node_totals()


async def usage_trend(
    uow: UnitOfWork,
    principal: Principal,
    *,
    hours: int,
    now: datetime,
    node_id: uuid.UUID | None = None,
) -> list[HourBucket]:
    """Hourly buckets of the last ``hours`` hours, of one node or of the whole cluster.

    Raises:
        Forbidden: the caller is not an admin.
        NodeNotFound: ``node_id`` names no node.
    """
    require_admin(principal)
    async with uow:
        if node_id is not None and await uow.nodes.get(node_id) is None:
            raise NodeNotFound()
        intervals = await uow.stats.lease_intervals(trend_start(now, hours), now, node_id)
        devices = await uow.stats.device_counts(node_id)
    leasable = sum(n for status, n in devices.items() if status != "retired")
    return hourly_trend(intervals, now=now, hours=hours, devices=leasable)


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """Nodes of one status or region: how many, their device room, devices and leases."""

    nodes: int
    max_devices: int
    leased_devices: int


async def nodes_summary(
    uow: UnitOfWork, principal: Principal
) -> tuple[dict[str, GroupSummary], dict[str, GroupSummary]]:
    """The nodes grouped by status and by region (its ``region`` label, else ``unknown``).

    Raises:
        Forbidden: the caller is not an admin.
    """
    require_admin(principal)
    async with uow:
        totals = await uow.stats.node_totals()
        nodes = {n.id: n for n in await uow.nodes.list()}
    by_status: dict[str, list[NodeTotals]] = {}
    by_region: dict[str, list[NodeTotals]] = {}
    for node_id, node_totals_ in totals.items():
        by_status.setdefault(node_totals_.status, []).append(node_totals_)
        region = region_of(nodes[node_id].labels) if node_id in nodes else None
        by_region.setdefault(region or "unknown", []).append(node_totals_)
    return _summaries(by_status), _summaries(by_region)


def _summaries(groups: dict[str, list[NodeTotals]]) -> dict[str, GroupSummary]:
    return {
        name: GroupSummary(
            nodes=len(members),
            max_devices=sum(m.max_devices for m in members),
            leased_devices=sum(m.leased_devices for m in members),
        )
        for name, members in sorted(groups.items())
    }


#: Label keys a node's region and zone are read from, first found wins.
REGION_LABELS = ("region", "topology.kubernetes.io/region")
ZONE_LABELS = ("zone", "topology.kubernetes.io/zone")


def region_of(labels: dict[str, str]) -> str | None:
    return next((labels[k] for k in REGION_LABELS if k in labels), None)


def zone_of(labels: dict[str, str]) -> str | None:
    return next((labels[k] for k in ZONE_LABELS if k in labels), None)


async def usage_totals(
    uow: UnitOfWork, start: datetime, end: datetime, tenant_id: uuid.UUID | None
) -> list[UsageTotal]:
    """Per tenant, user and device, what the usage records of ``[start, end)`` add up to.

    Raises:
        InvalidRequest: the window ends before it starts, or lacks a time zone.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidRequest("the window's instants must carry a time zone")
    if end <= start:
        raise InvalidRequest("the window must end after it starts")
    async with uow:
        return await uow.usage.totals(start, end, tenant_id)


async def fleet_gauges(uow: UnitOfWork, now: datetime, silent_after: timedelta) -> FleetGauges:
    """What the metrics' gauges show now (a node silent for ``silent_after`` missed its
    heartbeats)."""
    async with uow:
        return await uow.stats.gauges(now, now - silent_after)


async def recent_events(
    uow: UnitOfWork, principal: Principal, limit: int
) -> list[tuple[int, EventRecord]]:
    """The newest outbox events, newest first (what the operations page lists).

    Raises:
        Forbidden: the caller is not an admin.
    """
    require_admin(principal)
    async with uow:
        return await uow.outbox.recent(limit)


async def tasks(
    uow: UnitOfWork, principal: Principal, status: TaskStatus | None, page: int, page_size: int
) -> tuple[list[Task], int]:
    """Page ``page`` (from 1) of the queue entries and leases the caller may see, newest
    first, as the platform console's tasks, and how many there are."""
    async with uow:
        return await uow.stats.tasks(scope_of(principal), status, (page - 1) * page_size, page_size)
