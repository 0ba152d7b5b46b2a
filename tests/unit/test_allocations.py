from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.domain.allocations import (
    MAX_DURATION_MINUTES,
    MIN_DURATION_MINUTES,
    Allocation,
    AllocationStatus,
    end_time,
    lease_window,
    usage_record_for,
)
from scheduler.domain.errors import InvalidRequest
from scheduler.domain.resources import Resources

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
SMALL = Resources(2.0, 4096, 32768)


def lease(
    allocated_at: datetime = NOW,
    minutes: int = 60,
    status: AllocationStatus = AllocationStatus.ACTIVE,
) -> Allocation:
    return Allocation(
        id=uuid.uuid4(),
        device_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        user_id="alice",
        status=status,
        allocated_at=allocated_at,
        expires_at=allocated_at + timedelta(minutes=minutes),
        resources=SMALL,
    )


# ---- lease_window ----------------------------------------------------------------------


def test_a_lease_starts_now_and_expires_after_its_duration() -> None:
    assert lease_window(NOW, 90) == (NOW, NOW + timedelta(minutes=90))


@pytest.mark.parametrize("minutes", [MIN_DURATION_MINUTES, 2, 1439, MAX_DURATION_MINUTES])
def test_a_duration_from_one_minute_to_one_day_is_accepted(minutes: int) -> None:
    start, expiry = lease_window(NOW, minutes)

    assert start == NOW
    assert expiry - start == timedelta(minutes=minutes)


@pytest.mark.parametrize("minutes", [-60, -1, 0, MAX_DURATION_MINUTES + 1, 10_000])
def test_a_duration_outside_one_minute_to_one_day_is_an_invalid_request(minutes: int) -> None:
    with pytest.raises(InvalidRequest, match="durationMinutes"):
        lease_window(NOW, minutes)


# ---- end_time --------------------------------------------------------------------------


def test_a_lease_released_before_its_expiry_ends_at_the_release() -> None:
    allocation = lease(minutes=60)
    released = NOW + timedelta(minutes=10, seconds=3)

    assert end_time(allocation, AllocationStatus.RELEASED, released) == released


@pytest.mark.parametrize("status", [AllocationStatus.RELEASED, AllocationStatus.REVOKED])
def test_a_lease_ended_after_its_expiry_ends_no_later_than_its_due_second(
    status: AllocationStatus,
) -> None:
    allocation = lease(minutes=60)
    late = allocation.expires_at + timedelta(minutes=5)

    assert end_time(allocation, status, late) == allocation.expires_at


def test_a_lease_ended_at_a_clock_reading_before_it_began_ends_when_it_began() -> None:
    allocation = lease(minutes=60)
    skewed = NOW - timedelta(seconds=2)

    assert end_time(allocation, AllocationStatus.RELEASED, skewed) == allocation.allocated_at


@pytest.mark.parametrize(
    "sweep_delay", [timedelta(0), timedelta(milliseconds=700), timedelta(hours=3)]
)
def test_an_expired_lease_ends_at_its_due_second_however_late_the_sweep_ran(
    sweep_delay: timedelta,
) -> None:
    allocation = lease(minutes=30)

    ended = end_time(allocation, AllocationStatus.EXPIRED, allocation.expires_at + sweep_delay)

    assert ended == allocation.expires_at


def test_an_expired_lease_ends_at_its_due_second_even_if_the_sweep_ran_early() -> None:
    allocation = lease(minutes=30)
    early = allocation.expires_at - timedelta(seconds=1)

    assert end_time(allocation, AllocationStatus.EXPIRED, early) == allocation.expires_at


# ---- usage_record_for ------------------------------------------------------------------


def test_the_usage_record_copies_the_lease_it_ends() -> None:
    allocation = lease()
    record_id = uuid.uuid4()
    ended = NOW + timedelta(minutes=5)

    record = usage_record_for(
        allocation, ended_at=ended, end_reason="released", record_id=record_id
    )

    assert record.id == record_id
    assert record.allocation_id == allocation.id
    assert record.tenant_id == allocation.tenant_id
    assert record.user_id == allocation.user_id
    assert record.device_id == allocation.device_id
    assert record.started_at == allocation.allocated_at
    assert record.ended_at == ended
    assert record.resources == allocation.resources
    assert record.end_reason == "released"


@pytest.mark.parametrize(
    ("held", "billed_seconds"),
    [
        (timedelta(0), 0),
        (timedelta(seconds=1), 1),
        (timedelta(seconds=90), 90),
        (timedelta(minutes=MAX_DURATION_MINUTES), MAX_DURATION_MINUTES * 60),
    ],
)
def test_a_lease_held_for_whole_seconds_is_billed_exactly_those_seconds(
    held: timedelta, billed_seconds: int
) -> None:
    record = usage_record_for(
        lease(), ended_at=NOW + held, end_reason="released", record_id=uuid.uuid4()
    )

    assert record.duration_seconds == billed_seconds


@pytest.mark.parametrize(
    ("held", "billed_seconds"),
    [
        (timedelta(milliseconds=1), 1),
        (timedelta(milliseconds=500), 1),
        (timedelta(seconds=90, milliseconds=400), 91),
        (timedelta(seconds=59, microseconds=999_999), 60),
        (timedelta(seconds=10, microseconds=2), 11),
    ],
)
def test_a_partial_second_is_billed_as_a_whole_one(held: timedelta, billed_seconds: int) -> None:
    record = usage_record_for(
        lease(), ended_at=NOW + held, end_reason="released", record_id=uuid.uuid4()
    )

    assert record.duration_seconds == billed_seconds


@pytest.mark.parametrize(
    ("held", "billed_seconds"),
    [
        (timedelta(microseconds=1), 1),
        (timedelta(seconds=10, microseconds=1), 11),
    ],
)
def test_a_lease_one_microsecond_past_a_whole_second_is_billed_the_next_second(
    held: timedelta, billed_seconds: int
) -> None:
    record = usage_record_for(
        lease(), ended_at=NOW + held, end_reason="released", record_id=uuid.uuid4()
    )

    assert record.duration_seconds == billed_seconds


def test_a_lease_ending_before_it_began_is_billed_zero_seconds() -> None:
    record = usage_record_for(
        lease(), ended_at=NOW - timedelta(seconds=5), end_reason="released", record_id=uuid.uuid4()
    )

    assert record.duration_seconds == 0


def test_an_expired_lease_is_billed_until_its_due_second() -> None:
    allocation = lease(minutes=15)
    sweep_ran = allocation.expires_at + timedelta(seconds=4, milliseconds=250)
    ended = end_time(allocation, AllocationStatus.EXPIRED, sweep_ran)

    record = usage_record_for(
        allocation, ended_at=ended, end_reason="expired", record_id=uuid.uuid4()
    )

    assert record.ended_at == allocation.expires_at
    assert record.duration_seconds == 15 * 60
