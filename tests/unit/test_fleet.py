from __future__ import annotations

import pytest

from scheduler.domain.errors import NodeCapacityExceeded
from scheduler.domain.fleet import OCCUPYING_STATUSES, DeviceStatus, NodeCapacity, check_node_room
from scheduler.domain.resources import ZERO, Resources
from scheduler.services.fleet import FleetTotal

NODE = NodeCapacity(resources=Resources(32.0, 65536, 1_048_576), max_devices=8)
PHONE = Resources(4.0, 8192, 131_072)


def test_an_empty_node_takes_devices_up_to_its_device_limit() -> None:
    check_node_room(NODE, ZERO, 0, PHONE, 8)


def test_a_node_with_room_takes_one_more_device() -> None:
    used = Resources(28.0, 57344, 917_504)

    check_node_room(NODE, used, 7, PHONE, 1)


def test_a_node_refuses_devices_beyond_its_device_limit() -> None:
    tiny = Resources(0.1, 1, 1)

    with pytest.raises(NodeCapacityExceeded, match="7 of 8 devices; cannot add 2"):
        check_node_room(NODE, ZERO, 7, tiny, 2)


def test_a_node_refuses_more_devices_than_it_can_ever_hold() -> None:
    with pytest.raises(NodeCapacityExceeded):
        check_node_room(NODE, ZERO, 0, PHONE, 9)


@pytest.mark.parametrize(
    "adding",
    [
        Resources(4.5, 8192, 131_072),
        Resources(4.0, 8193, 131_072),
        Resources(4.0, 8192, 131_073),
    ],
    ids=["cpu", "memory", "storage"],
)
def test_a_node_refuses_devices_that_overflow_any_resource(adding: Resources) -> None:
    with pytest.raises(NodeCapacityExceeded, match="cannot hold 8 more devices"):
        check_node_room(NODE, ZERO, 0, adding, 8)


def test_the_devices_already_on_a_node_count_against_its_resources() -> None:
    used = Resources(30.0, 0, 0)

    with pytest.raises(NodeCapacityExceeded):
        check_node_room(NODE, used, 1, PHONE, 1)


def test_fractional_cores_that_add_up_exactly_to_the_capacity_fit() -> None:
    node = NodeCapacity(resources=Resources(0.3, 300, 300), max_devices=3)

    check_node_room(node, ZERO, 0, Resources(0.1, 100, 100), 3)


def test_every_device_but_a_retired_one_occupies_its_node() -> None:
    assert set(OCCUPYING_STATUSES) == {s.value for s in DeviceStatus} - {"retired"}


def test_the_fleets_available_total_is_remembered_for_its_ttl_only() -> None:
    now = [100.0]
    total = FleetTotal(ttl=1.0, clock=lambda: now[0])
    assert total.get() is None
    total.keep(42)
    now[0] += 0.9
    assert total.get() == 42
    now[0] += 0.2
    assert total.get() is None


def test_overcommit_ratios_scale_cpu_and_memory_but_never_storage() -> None:
    host = NodeCapacity(Resources(8, 16384, 100_000), 100, 2.0, 1.5)
    assert host.allocatable == Resources(16, 24576, 100_000)
    check_node_room(host, ZERO, 0, Resources(2, 3072, 1000), 8)  # 16 cores, 24 GiB
    with pytest.raises(NodeCapacityExceeded, match="overcommit"):
        check_node_room(host, ZERO, 0, Resources(2, 3072, 1000), 9)
    with pytest.raises(NodeCapacityExceeded):
        check_node_room(host, ZERO, 0, Resources(0.1, 1, 20_000), 6)  # storage is not
