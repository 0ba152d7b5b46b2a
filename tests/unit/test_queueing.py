"""The queue's pure rules: priority, fair share, the starvation bound and the ETA."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.domain.errors import InvalidRequest
from scheduler.domain.queueing import (
    QueueEntry,
    QueuePolicy,
    QueueStatus,
    decayed,
    estimated_start,
    ordered,
    overuse_by_tenant,
    priority,
    queue_window,
)
from scheduler.domain.resources import DeviceRequirements

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = QueuePolicy()


def entry(tier: str, submitted: datetime = NOW, tenant: uuid.UUID | None = None) -> QueueEntry:
    return QueueEntry(
        id=uuid.uuid4(),
        tenant_id=tenant or uuid.uuid4(),
        user_id="u",
        tier=tier,
        duration_minutes=30,
        requirements=DeviceRequirements(),
        status=QueueStatus.WAITING,
        submitted_at=submitted,
        deadline_at=submitted + timedelta(minutes=30),
    )


def test_a_higher_tier_outranks_a_lower_one_submitted_at_the_same_time() -> None:
    assert (
        priority(entry("enterprise"), now=NOW, policy=POLICY)
        > priority(entry("standard"), now=NOW, policy=POLICY)
        > priority(entry("free"), now=NOW, policy=POLICY)
    )


def test_an_unknown_tier_weighs_like_standard() -> None:
    assert priority(entry("gold"), now=NOW, policy=POLICY) == priority(
        entry("standard"), now=NOW, policy=POLICY
    )


def test_waiting_raises_priority_by_the_aging_rate() -> None:
    e = entry("free")
    later = NOW + timedelta(minutes=3)
    assert priority(e, now=later, policy=POLICY) - priority(e, now=NOW, policy=POLICY) == 60.0


def test_a_tenant_using_more_than_its_share_waits_behind_one_using_less() -> None:
    heavy, light = uuid.uuid4(), uuid.uuid4()
    overuse = overuse_by_tenant({heavy: 900.0, light: 100.0}, {heavy, light})
    assert overuse[heavy] == pytest.approx(0.4) and overuse[light] == pytest.approx(-0.4)
    a, b = entry("standard", tenant=heavy), entry("standard", tenant=light)
    assert ordered([a, b], now=NOW, policy=POLICY, overuse=overuse) == [b, a]


def test_fair_share_is_neutral_without_usage() -> None:
    t = uuid.uuid4()
    assert overuse_by_tenant({}, {t}) == {t: 0.0}
    assert overuse_by_tenant({t: 5.0}, set()) == {}


def test_usage_halves_every_half_life() -> None:
    assert decayed(100.0, timedelta(hours=2), timedelta(hours=1)) == pytest.approx(25.0)


def test_ties_go_to_the_earlier_submission() -> None:
    first = entry("standard", NOW - timedelta(seconds=1))
    second = entry("standard", NOW - timedelta(seconds=1))
    older = entry("standard", NOW - timedelta(seconds=2))
    result = ordered([first, second, older], now=NOW, policy=POLICY, overuse={})
    assert result[0] is older


def test_queue_window_bounds() -> None:
    assert queue_window(NOW, 15, 1) == NOW + timedelta(minutes=1)
    for duration, wait in ((14, 30), (1441, 30), (60, 0), (60, 121)):
        with pytest.raises(InvalidRequest):
            queue_window(NOW, duration, wait)


@settings(max_examples=60, deadline=None)
@given(
    arrivals_per_minute=st.integers(min_value=1, max_value=5),
    frees_per_minute=st.integers(min_value=1, max_value=3),
)
def test_no_entry_arriving_later_than_the_bound_is_served_before_a_free_tier_entry(
    arrivals_per_minute: int, frees_per_minute: int
) -> None:
    """Under a continuous stream of enterprise requests from a tenant with no usage, and the
    free-tier entry's tenant the heaviest user, entries that arrive more than the starvation
    bound after it never go first: it is served after a finite number of grants, whatever the
    stream (and so after at most bound × arrivals / frees minutes)."""
    heavy, light = uuid.uuid4(), uuid.uuid4()
    low = entry("free", NOW, tenant=light)
    waiting = [low]
    bound = timedelta(minutes=POLICY.starvation_bound_minutes)
    overuse = overuse_by_tenant({heavy: 0.0, light: 1e9}, {heavy, light})  # worst case for low
    for minute in range(1, 10_000):
        now = NOW + timedelta(minutes=minute)
        waiting += [entry("enterprise", now, tenant=heavy) for _ in range(arrivals_per_minute)]
        served = ordered(waiting, now=now, policy=POLICY, overuse=overuse)[:frees_per_minute]
        if low in served:
            break
        assert all(e.submitted_at <= low.submitted_at + bound for e in served)
        waiting = [e for e in waiting if e not in served]
    assert low in served
    limit = POLICY.starvation_bound_minutes * arrivals_per_minute / frees_per_minute + 1
    assert minute <= limit


def test_the_starvation_bound_of_the_default_policy_is_fifteen_minutes() -> None:
    assert POLICY.starvation_bound_minutes == 15.0


def test_the_eta_is_now_when_a_matching_device_is_free() -> None:
    assert (
        estimated_start(
            now=NOW, device_free_at=[NOW], ahead_durations=[], reset=timedelta(seconds=5)
        )
        == NOW
    )


def test_the_eta_follows_leases_ending_and_the_entries_ahead() -> None:
    reset = timedelta(seconds=10)
    free = [NOW + timedelta(minutes=10), NOW + timedelta(minutes=20)]
    ahead = [timedelta(minutes=30), timedelta(minutes=30)]
    # the two ahead take the devices at 10 and 20 min; the first frees again at 40 min + reset
    assert estimated_start(now=NOW, device_free_at=free, ahead_durations=ahead, reset=reset) == (
        NOW + timedelta(minutes=40) + reset
    )


def test_there_is_no_eta_when_nothing_matches() -> None:
    assert (
        estimated_start(now=NOW, device_free_at=[], ahead_durations=[], reset=timedelta(0)) is None
    )
