"""PhoneFleet's metrics (``phonefleet_*``, with Ray's ``ray_`` prefix in Prometheus), for the
dashboard and any Prometheus: scraped at ``http://<node>:<metrics-export port>/metrics``.

* the housekeeper's: gauges of the fleet's state read from the database every
  ``GAUGE_SECONDS`` (devices by node and status, active leases by tier, waiting entries and
  the oldest wait by tier, the outbox backlog and relay lag, nodes that missed their
  heartbeats, its own tick lag), and counters of lease events, counted from the events it
  relays (so every replica's grants count once, whoever made them);
* each Serve replica's: allocate and release latency;
* the queue actor's: how long a drain takes.

Tags name what a series is about (node, status, tier, kind, route), never the worker: sum
across replicas with ``sum by (route)``. Gauges are re-set on every refresh (Ray drops a
gauge not set for ~20 s), including to 0 for what disappeared since the last one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from ray.util.metrics import Counter as RayCounter
from ray.util.metrics import Gauge, Histogram

from scheduler.domain.usage_stats import FleetGauges

#: How often the housekeeper refreshes the gauges (Ray drops a gauge not set within ~20 s).
GAUGE_SECONDS = 5.0
#: The lease events counted, by event type.
LEASE_EVENTS = {
    "allocation.granted": "grant",
    "allocation.released": "release",
    "allocation.expired": "expiry",
    "allocation.revoked": "revocation",
    "allocation.moved": "move",
}
#: Latency buckets, seconds: 1 ms to 10 s.
LATENCY_BOUNDARIES = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]


class FleetMetrics:
    """The housekeeper's metrics."""

    def __init__(self) -> None:
        self._devices = Gauge(
            "phonefleet_devices", "Devices by node and status.", tag_keys=("node", "status")
        )
        self._leases = Gauge(
            "phonefleet_leases_active", "Active leases by tenant tier.", tag_keys=("tier",)
        )
        self._waiting = Gauge(
            "phonefleet_queue_waiting", "Waiting queue entries by tier.", tag_keys=("tier",)
        )
        self._oldest = Gauge(
            "phonefleet_queue_oldest_wait_seconds",
            "How long the oldest waiting entry of each tier has waited.",
            tag_keys=("tier",),
        )
        self._backlog = Gauge("phonefleet_outbox_backlog", "Outbox events not relayed yet.")
        self._relay_lag = Gauge(
            "phonefleet_outbox_relay_lag_seconds", "Age of the oldest event not relayed yet."
        )
        self._silent = Gauge(
            "phonefleet_node_heartbeats_missed",
            "Nodes in service not heard from within their offline threshold.",
        )
        self._tick_lag = Gauge(
            "phonefleet_housekeeper_tick_lag_seconds",
            "How late the housekeeper's last tick started after it was due.",
        )
        self._events = RayCounter(
            "phonefleet_lease_events",
            "Lease events relayed: grant, release, expiry, revocation, move.",
            tag_keys=("kind",),
        )
        self._shown: dict[int, set[tuple[str, ...]]] = {}

    def publish(self, gauges: FleetGauges) -> None:
        self._set(self._devices, ("node", "status"), dict(gauges.devices))
        self._set(self._leases, ("tier",), _by_tier(gauges.leases_by_tier))
        self._set(self._waiting, ("tier",), _by_tier(gauges.waiting_by_tier))
        self._set(self._oldest, ("tier",), _by_tier(gauges.oldest_wait_by_tier))
        self._backlog.set(gauges.outbox_backlog)
        self._relay_lag.set(gauges.relay_lag_seconds)
        self._silent.set(gauges.nodes_silent)

    def tick_lag(self, seconds: float) -> None:
        self._tick_lag.set(max(0.0, seconds))

    def count_relayed(self, relayed: Mapping[str, int]) -> None:
        for event_type, kind in LEASE_EVENTS.items():
            if relayed.get(event_type):
                self._events.inc(relayed[event_type], tags={"kind": kind})

    def _set(
        self, gauge: Gauge, keys: tuple[str, ...], values: Mapping[tuple[str, ...], float]
    ) -> None:
        """Set every series of ``values``, and 0 those shown before that are gone."""
        for series, value in values.items():
            gauge.set(value, tags=dict(zip(keys, series, strict=True)))
        for gone in self._shown.get(id(gauge), set()) - set(values):
            gauge.set(0, tags=dict(zip(keys, gone, strict=True)))
        self._shown[id(gauge)] = set(values)


def _by_tier(values: Mapping[str, float]) -> dict[tuple[str, ...], float]:
    return {(tier,): value for tier, value in values.items()}


class RelayedSince:
    """What a counter of relayed events held when last read, so only the new are counted."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()

    def new(self, total: Counter[str]) -> Counter[str]:
        fresh = total - self._seen
        self._seen = Counter(total)
        return fresh


class RequestMetrics:
    """A replica's allocate and release latency."""

    def __init__(self) -> None:
        self._seconds = Histogram(
            "phonefleet_request_seconds",
            "Allocate and release latency in the replica, seconds.",
            boundaries=LATENCY_BOUNDARIES,
            tag_keys=("route",),
        )

    def observe(self, route: str, seconds: float) -> None:
        self._seconds.observe(seconds, tags={"route": route})


class DrainMetrics:
    """The queue actor's drain time."""

    def __init__(self) -> None:
        self._seconds = Histogram(
            "phonefleet_queue_drain_seconds",
            "How long one drain of the wait queue takes, seconds.",
            boundaries=LATENCY_BOUNDARIES,
        )

    def observe(self, seconds: float) -> None:
        self._seconds.observe(seconds)
