from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.services.housekeeping import Housekeeper, HousekeeperConfig, tick_of

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def housekeeper(relay_seconds: float = 0.2, max_sleep_seconds: float = 1.0) -> Housekeeper:
    config = HousekeeperConfig(
        relay_seconds=relay_seconds,
        max_sleep_seconds=max_sleep_seconds,
        retention_seconds=3600.0,
    )
    # seconds_until_next touches neither the unit of work, the stream nor the lifecycle.
    return Housekeeper(None, None, None, None, config, owner="unit-test")  # type: ignore[arg-type]


# ---- tick_of ---------------------------------------------------------------------------


def test_a_one_second_job_ticks_once_per_epoch_second() -> None:
    assert tick_of(NOW, 1.0) == int(NOW.timestamp())
    assert tick_of(NOW + timedelta(milliseconds=999), 1.0) == int(NOW.timestamp())
    assert tick_of(NOW + timedelta(seconds=1), 1.0) == int(NOW.timestamp()) + 1


def test_every_run_within_one_minute_shares_a_minute_job_tick() -> None:
    start = tick_of(NOW, 60.0)

    assert tick_of(NOW + timedelta(seconds=59, microseconds=999_999), 60.0) == start
    assert tick_of(NOW + timedelta(seconds=60), 60.0) == start + 1
    assert tick_of(NOW - timedelta(microseconds=1), 60.0) == start - 1


def test_a_tick_is_the_floor_of_the_timestamp_over_the_interval() -> None:
    at = NOW + timedelta(milliseconds=350)

    assert tick_of(at, 0.2) == int(NOW.timestamp()) * 5 + 1


def test_a_tick_does_not_depend_on_the_time_zone_of_now() -> None:
    elsewhere = NOW.astimezone(timezone(timedelta(hours=-7)))

    assert tick_of(elsewhere, 0.2) == tick_of(NOW, 0.2)


@settings(database=None, deadline=None)
@given(
    offset_us=st.integers(0, 10**10),
    step_us=st.integers(0, 10**8),
    interval=st.sampled_from([0.1, 0.2, 0.25, 1.0, 5.0, 60.0]),
)
def test_ticks_never_go_backwards_as_time_moves_on(
    offset_us: int, step_us: int, interval: float
) -> None:
    earlier = NOW + timedelta(microseconds=offset_us)
    later = earlier + timedelta(microseconds=step_us)

    assert tick_of(earlier, interval) <= tick_of(later, interval)


# ---- Housekeeper.seconds_until_next ----------------------------------------------------


def test_with_no_lease_due_the_housekeeper_waits_one_relay_interval() -> None:
    assert housekeeper(relay_seconds=0.2).seconds_until_next(NOW) == pytest.approx(0.2)


def test_the_housekeeper_never_sleeps_longer_than_its_maximum() -> None:
    keeper = housekeeper(relay_seconds=5.0, max_sleep_seconds=1.0)

    assert keeper.seconds_until_next(NOW) == pytest.approx(1.0)


def test_a_lease_due_before_the_next_relay_shortens_the_sleep() -> None:
    keeper = housekeeper(relay_seconds=0.2)
    keeper._next_expiry = NOW + timedelta(milliseconds=50)

    assert keeper.seconds_until_next(NOW) == pytest.approx(0.05)


def test_a_lease_due_after_the_next_relay_does_not_lengthen_the_sleep() -> None:
    keeper = housekeeper(relay_seconds=0.2)
    keeper._next_expiry = NOW + timedelta(minutes=10)

    assert keeper.seconds_until_next(NOW) == pytest.approx(0.2)


@pytest.mark.parametrize("overdue", [timedelta(0), timedelta(milliseconds=1), timedelta(hours=1)])
def test_a_lease_already_due_means_no_sleep_at_all(overdue: timedelta) -> None:
    keeper = housekeeper()
    keeper._next_expiry = NOW - overdue

    assert keeper.seconds_until_next(NOW) == 0.0


@settings(database=None, deadline=None)
@given(
    relay=st.floats(0.001, 60.0),
    max_sleep=st.floats(0.001, 60.0),
    due_in_ms=st.none() | st.integers(-3_600_000, 3_600_000),
)
def test_the_sleep_is_never_negative_nor_past_the_relay_interval_or_the_maximum(
    relay: float, max_sleep: float, due_in_ms: int | None
) -> None:
    keeper = housekeeper(relay_seconds=relay, max_sleep_seconds=max_sleep)
    if due_in_ms is not None:
        keeper._next_expiry = NOW + timedelta(milliseconds=due_in_ms)

    wait = keeper.seconds_until_next(NOW)

    assert 0.0 <= wait <= min(relay, max_sleep)
    if due_in_ms is not None:
        assert wait <= max(0.0, due_in_ms / 1000)


@settings(database=None, deadline=None)
@given(sooner_ms=st.integers(0, 2000), later_ms=st.integers(0, 2000))
def test_a_lease_due_sooner_never_means_a_longer_sleep(sooner_ms: int, later_ms: int) -> None:
    sooner_ms, later_ms = sorted((sooner_ms, later_ms))
    soon, late = housekeeper(relay_seconds=1.0, max_sleep_seconds=1.0), housekeeper(1.0, 1.0)
    soon._next_expiry = NOW + timedelta(milliseconds=sooner_ms)
    late._next_expiry = NOW + timedelta(milliseconds=later_ms)

    assert soon.seconds_until_next(NOW) <= late.seconds_until_next(NOW)
