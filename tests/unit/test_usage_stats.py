"""The statistics' pure core: hourly trends from lease intervals, and cluster totals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.domain.resources import Resources
from scheduler.domain.usage_stats import (
    LeaseInterval,
    NodeTotals,
    cluster_stats,
    hourly_trend,
    peak_concurrent,
    trend_start,
)

NOW = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)
H = timedelta(hours=1)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 7, hour, minute, tzinfo=UTC)


def test_buckets_end_with_the_hour_now_is_in() -> None:
    buckets = hourly_trend([], now=NOW, hours=3, devices=4)
    assert [b.hour for b in buckets] == [at(13), at(14), at(15)]
    assert trend_start(NOW, 1) == at(15)
    assert all(b.leases == 0 and b.device_seconds == 0 and b.utilization == 0 for b in buckets)


def test_a_lease_counts_in_every_hour_it_held_a_device_for_the_time_it_held_it() -> None:
    lease = LeaseInterval(at(13, 45), at(14, 15))
    b13, b14, b15 = hourly_trend([lease], now=NOW, hours=3, devices=2)
    assert (b13.leases, b13.device_seconds, b13.peak_concurrent) == (1, 900, 1)
    assert (b14.leases, b14.device_seconds) == (1, 900)
    assert b13.utilization == 900 / (3600 * 2)
    assert b15.leases == 0


def test_a_running_lease_counts_up_to_now_and_the_current_hour_is_over_what_passed() -> None:
    running = LeaseInterval(at(15), None)
    (b15,) = hourly_trend([running], now=NOW, hours=1, devices=1)
    assert b15.device_seconds == 1800
    assert b15.utilization == 1.0  # the device was held for all of the half hour so far


def test_leases_before_the_window_are_clipped_to_it_and_later_ones_ignored() -> None:
    early = LeaseInterval(at(10), at(14, 30))
    (b14, _) = hourly_trend([early, LeaseInterval(at(16), None)], now=NOW, hours=2, devices=1)
    assert (b14.hour, b14.leases, b14.device_seconds) == (at(14), 1, 1800)


def test_peak_concurrency_does_not_count_leases_that_only_touch() -> None:
    back_to_back = [(at(14), at(14, 10)), (at(14, 10), at(14, 20))]
    overlapping = [(at(14), at(14, 30)), (at(14, 10), at(14, 20)), (at(14, 15), at(14, 40))]
    assert peak_concurrent(back_to_back) == 1
    assert peak_concurrent(overlapping) == 3
    assert peak_concurrent([(at(14, 5), at(14, 5))]) == 1  # released the instant it began
    assert peak_concurrent([]) == 0


def test_a_lease_of_no_length_counts_in_the_hour_it_happened() -> None:
    instant = LeaseInterval(at(14, 0), at(14, 0))
    b13, b14, _ = hourly_trend([instant], now=NOW, hours=3, devices=1)
    assert (b13.leases, b14.leases, b14.device_seconds, b14.peak_concurrent) == (0, 1, 0, 1)


def test_cluster_totals_sum_the_nodes_and_utilization_is_usage_over_capacity() -> None:
    def node(status: str, cpu: float, leased_cpu: float, leased: int) -> NodeTotals:
        return NodeTotals(
            status, Resources(cpu, 1000, 10_000), 10, Resources(leased_cpu, 100, 500), leased
        )

    stats = cluster_stats(
        [node("ready", 8, 2, 1), node("cordoned", 8, 2, 1), node("offline", 16, 0, 0)],
        {"available": 5, "allocated": 2, "retired": 3, "failed": 1},
    )
    assert stats.nodes == {
        "total": 3,
        "online": 2,
        "ready": 1,
        "cordoned": 1,
        "offline": 1,
        "maintenance": 0,
        "draining": 0,
    }
    assert (stats.capacity, stats.max_devices) == (Resources(32, 3000, 30_000), 30)
    assert (stats.usage, stats.leased_devices) == (Resources(4, 300, 1500), 2)
    assert stats.utilization == {"cpu": 0.125, "memory": 0.1, "storage": 0.05, "devices": 0.25}


def test_an_empty_cluster_has_no_utilization_rather_than_a_division_by_zero() -> None:
    stats = cluster_stats([], {})
    assert stats.utilization == {"cpu": 0.0, "memory": 0.0, "storage": 0.0, "devices": 0.0}


def test_a_lease_that_ended_as_the_window_began_is_not_in_it() -> None:
    ended = LeaseInterval(at(12, 30), at(13))
    b13, _, _ = hourly_trend([ended], now=NOW, hours=3, devices=1)
    assert (b13.leases, b13.device_seconds) == (0, 0)
