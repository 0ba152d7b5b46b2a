from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from scheduler.domain.allocations import DEFAULT_DURATION_MINUTES
from scheduler.domain.resources import DeviceRequirements, Toleration
from serve.schemas import AllocateIn, ReleaseIn

# ---- AllocateIn ------------------------------------------------------------------------


def test_an_empty_allocate_body_asks_for_any_device_for_the_default_duration() -> None:
    body = AllocateIn.model_validate({})

    command = body.to_command()

    assert command.user_id is None
    assert command.duration_minutes == DEFAULT_DURATION_MINUTES
    assert command.requirements == DeviceRequirements()


def test_an_allocate_body_becomes_a_command_with_its_requirements() -> None:
    body = AllocateIn.model_validate(
        {
            "userId": "bob",
            "durationMinutes": 30,
            "preferredSpecs": {
                "minCpu": 2,
                "minMemory": 4096,
                "minStorage": 32768,
                "androidVersion": "14",
                "labels": {"pool": "ci"},
                "tolerations": [{"key": "zone"}, {"key": "gpu", "value": "busy"}],
            },
        }
    )

    command = body.to_command()

    assert command.user_id == "bob"
    assert command.duration_minutes == 30
    assert command.requirements == DeviceRequirements(
        2.0, 4096, 32768, "14", {"pool": "ci"}, (Toleration("zone"), Toleration("gpu", "busy"))
    )


@pytest.mark.parametrize("minutes", [1, 1440])
def test_an_allocate_body_accepts_durations_from_one_minute_to_one_day(minutes: int) -> None:
    assert AllocateIn.model_validate({"durationMinutes": minutes}).durationMinutes == minutes


@pytest.mark.parametrize("minutes", [-1, 0, 1441, 100_000])
def test_an_allocate_body_rejects_durations_outside_one_minute_to_one_day(minutes: int) -> None:
    with pytest.raises(ValidationError) as caught:
        AllocateIn.model_validate({"durationMinutes": minutes})

    assert caught.value.errors()[0]["loc"] == ("durationMinutes",)


@pytest.mark.parametrize(
    "body",
    [
        {"durationMinute": 30},
        {"duration_minutes": 30},
        {"userId": "bob", "tenantId": str(uuid.uuid4())},
        {"preferredSpecs": {"minCPU": 2}},
        {"preferredSpecs": {"tolerations": [{"key": "zone", "effect": "NoSchedule"}]}},
    ],
    ids=["misspelt", "snake-case", "tenant-from-body", "nested-misspelt", "toleration-extra"],
)
def test_an_allocate_body_rejects_unknown_fields(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        AllocateIn.model_validate(body)

    assert {e["type"] for e in caught.value.errors()} == {"extra_forbidden"}


def test_an_allocate_body_rejects_an_empty_user_id() -> None:
    with pytest.raises(ValidationError):
        AllocateIn.model_validate({"userId": ""})


# ---- ReleaseIn -------------------------------------------------------------------------


def test_a_release_body_may_name_the_allocation() -> None:
    allocation_id = uuid.uuid4()

    body = ReleaseIn.model_validate({"allocationId": str(allocation_id)})

    assert (body.allocationId, body.deviceId) == (allocation_id, None)


def test_a_release_body_may_name_the_device() -> None:
    device_id = uuid.uuid4()

    body = ReleaseIn.model_validate({"deviceId": str(device_id)})

    assert (body.allocationId, body.deviceId) == (None, device_id)


def test_a_release_body_naming_nothing_is_rejected() -> None:
    with pytest.raises(ValidationError, match="exactly one of allocationId or deviceId"):
        ReleaseIn.model_validate({})


def test_a_release_body_naming_both_allocation_and_device_is_rejected() -> None:
    with pytest.raises(ValidationError, match="exactly one of allocationId or deviceId"):
        ReleaseIn.model_validate({"allocationId": str(uuid.uuid4()), "deviceId": str(uuid.uuid4())})


def test_a_release_body_with_explicit_nulls_for_both_is_rejected() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        ReleaseIn.model_validate({"allocationId": None, "deviceId": None})


def test_a_release_body_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        ReleaseIn.model_validate({"allocationId": str(uuid.uuid4()), "reason": "done"})


def test_a_release_body_rejects_an_id_that_is_not_a_uuid() -> None:
    with pytest.raises(ValidationError):
        ReleaseIn.model_validate({"deviceId": "device-7"})
