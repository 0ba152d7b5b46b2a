"""The views a drain stores for a crowd to read: each entry's place among those it competes
with, its simulated start and its reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from scheduler.domain.queueing import (
    QueueEntry,
    QueueStatus,
    WaitReason,
    class_key,
    wait_views,
)
from scheduler.domain.resources import DeviceRequirements

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
RESET = timedelta(seconds=60)
POOL_A = DeviceRequirements(labels={"pool": "a"})
POOL_B = DeviceRequirements(labels={"pool": "b"})
ANY_A = DeviceRequirements(min_cpu=1, labels={"pool": "a"})


def waiting(
    requirements: DeviceRequirements, minutes: int = 30, tenant: uuid.UUID | None = None
) -> QueueEntry:
    return QueueEntry(
        uuid.uuid4(),
        tenant or uuid.uuid4(),
        "u",
        "standard",
        minutes,
        requirements,
        QueueStatus.WAITING,
        NOW,
        NOW + timedelta(minutes=30),
    )


def devices(*free_in_minutes: float) -> list[tuple[uuid.UUID, datetime]]:
    return [(uuid.uuid4(), NOW + timedelta(minutes=m)) for m in free_in_minutes]


def test_an_entry_is_placed_among_the_entries_that_compete_for_its_devices_only() -> None:
    a1, b1, a2 = waiting(POOL_A), waiting(POOL_B), waiting(POOL_A)
    fleet = {class_key(POOL_A): devices(10), class_key(POOL_B): devices(5)}

    views = wait_views([a1, b1, a2], {}, fleet, {}, now=NOW, reset=RESET)

    assert [views[e.id].position for e in (a1, b1, a2)] == [1, 1, 2]
    assert views[b1.id].reason is WaitReason.ALL_MATCHING_DEVICES_BUSY
    assert views[a2.id].reason is WaitReason.HIGHER_PRIORITY_AHEAD


def test_classes_that_share_devices_compete_and_share_one_pool_of_start_times() -> None:
    shared = devices(10)
    first, second = waiting(POOL_A, minutes=20), waiting(ANY_A)
    fleet = {class_key(POOL_A): shared, class_key(ANY_A): shared}

    views = wait_views([first, second], {}, fleet, {}, now=NOW, reset=RESET)

    assert views[first.id].estimated_start_at == NOW + timedelta(minutes=10)
    # the second waits for the first's lease and a reset on the one device they share
    assert views[second.id].estimated_start_at == NOW + timedelta(minutes=31)
    assert views[second.id].ahead_count == 1


def test_free_devices_start_now_and_no_device_means_no_start() -> None:
    now_free, nowhere = waiting(POOL_A), waiting(POOL_B)
    fleet = {class_key(POOL_A): devices(-5), class_key(POOL_B): []}

    views = wait_views([now_free, nowhere], {}, fleet, {}, now=NOW, reset=RESET)

    assert views[now_free.id].estimated_start_at == NOW
    assert views[nowhere.id].estimated_start_at is None
    assert views[nowhere.id].reason is WaitReason.NO_MATCHING_DEVICE


def test_a_tenant_without_quota_is_told_so_and_priorities_and_the_drain_time_are_kept() -> None:
    tenant = uuid.uuid4()
    entry = waiting(POOL_A, tenant=tenant)

    views = wait_views(
        [entry],
        {entry.id: 321.5},
        {class_key(POOL_A): devices(1)},
        {tenant: False},
        now=NOW,
        reset=RESET,
    )

    assert views[entry.id].reason is WaitReason.QUOTA_EXCEEDED
    assert (views[entry.id].priority, views[entry.id].as_of) == (321.5, NOW)
