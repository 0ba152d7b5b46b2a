"""What a process keeps of its candidate reads: young enough, under the same strategy,
without the devices it granted after the read."""

from __future__ import annotations

import uuid

from scheduler.adapters.recent_candidates import KeptRead, RecentCandidates
from scheduler.domain.resources import DeviceRequirements


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


NODE = uuid.uuid4()


def kept_with(ids: list[uuid.UUID], read_at: float) -> KeptRead:
    row = {"node_id": NODE, "ids": ids, "free": len(ids) + 5, "occupancy": 0.5, "max_devices": 20}
    return KeptRead(read_at, "binpack", [row], {})


def test_a_read_serves_alike_requests_for_its_time_only() -> None:
    clock = Clock()
    recent = RecentCandidates(1.0, clock)
    wanted = DeviceRequirements(labels={"pool": "a"})
    recent.keep(wanted, kept_with([uuid.uuid4()], clock.now))

    kept = recent.get(wanted)
    assert kept is not None and kept.strategy == "binpack"
    assert recent.get(DeviceRequirements(labels={"pool": "b"})) is None
    clock.now += 1.0
    assert recent.get(wanted) is None


def test_devices_granted_after_the_read_are_left_out() -> None:
    clock = Clock()
    recent = RecentCandidates(1.0, clock)
    wanted = DeviceRequirements()
    before, after, untouched = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    recent.taken([before])  # granted before the read: the read saw it as it was
    clock.now += 0.1
    recent.keep(wanted, kept_with([before, after, untouched], clock.now))
    clock.now += 0.1
    recent.taken([after])

    kept = recent.get(wanted)

    assert kept is not None
    (row,) = kept.rows
    assert (set(row["ids"]), row["free"], row["occupancy"]) == ({before, untouched}, 7, 0.55)


def test_a_class_left_without_devices_is_dropped() -> None:
    clock = Clock()
    recent = RecentCandidates(1.0, clock)
    only = uuid.uuid4()
    recent.keep(DeviceRequirements(), kept_with([only], clock.now))
    recent.taken([only])

    kept = recent.get(DeviceRequirements())

    assert kept is not None and kept.rows == []
