"""Fleet statistics (admin only), computed from the records: the cluster's capacity, usage
and utilization, the nodes summarized by status and region, and hourly usage trends."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from scheduler.domain.usage_stats import MAX_TREND_HOURS
from scheduler.services import statistics
from serve.deps import PrincipalDep, ServicesDep
from serve.schemas.stats import (
    ClusterStatsOut,
    EventOut,
    GroupSummaryOut,
    HourOut,
    NodesSummaryOut,
    UsageTrendOut,
)

router = APIRouter(tags=["statistics"])

Hours = Annotated[int, Query(ge=1, le=MAX_TREND_HOURS, description="hourly buckets, newest last")]


@router.get("/scheduler/resources/cluster-stats", response_model=ClusterStatsOut)
async def cluster_stats(principal: PrincipalDep, services: ServicesDep) -> ClusterStatsOut:
    return ClusterStatsOut.of(await statistics.fleet_stats(services.uow(), principal))


@router.get("/scheduler/nodes/stats/summary", response_model=NodesSummaryOut)
async def nodes_summary(principal: PrincipalDep, services: ServicesDep) -> NodesSummaryOut:
    by_status, by_region = await statistics.nodes_summary(services.uow(), principal)
    return NodesSummaryOut(
        byStatus={k: GroupSummaryOut.of(v) for k, v in by_status.items()},
        byRegion={k: GroupSummaryOut.of(v) for k, v in by_region.items()},
    )


@router.get("/scheduler/cluster/usage-trend", response_model=UsageTrendOut)
async def cluster_usage_trend(
    principal: PrincipalDep, services: ServicesDep, hours: Hours = 24
) -> UsageTrendOut:
    buckets = await statistics.usage_trend(
        services.uow(), principal, hours=hours, now=services.clock()
    )
    return UsageTrendOut(hours=hours, buckets=[HourOut.of(b) for b in buckets])


@router.get("/scheduler/nodes/{node_id}/usage-trend", response_model=UsageTrendOut)
async def node_usage_trend(
    node_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep, hours: Hours = 24
) -> UsageTrendOut:
    buckets = await statistics.usage_trend(
        services.uow(), principal, hours=hours, now=services.clock(), node_id=node_id
    )
    return UsageTrendOut(hours=hours, buckets=[HourOut.of(b) for b in buckets])


@router.get("/scheduler/events", response_model=list[EventOut])
async def recent_events(
    principal: PrincipalDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[EventOut]:
    """The newest events of the outbox, newest first (relayed or not)."""
    events = await statistics.recent_events(services.uow(), principal, limit)
    return [EventOut.of(seq, record) for seq, record in events]
