from __future__ import annotations

import pickle

import pytest

from scheduler.domain.errors import Unsatisfiable
from scheduler.domain.resources import ZERO, DeviceRequirements, Resources, Taint, Toleration

LIMIT = Resources(8.0, 16384, 262_144)


# ---- Resources -------------------------------------------------------------------------


def test_resources_add_component_by_component() -> None:
    total = Resources(1.5, 1024, 2048) + Resources(2.0, 512, 4096)

    assert total == Resources(3.5, 1536, 6144)


def test_adding_zero_changes_nothing() -> None:
    assert LIMIT + ZERO == LIMIT
    assert ZERO + LIMIT == LIMIT


def test_resources_equal_to_the_limit_fit_within_it() -> None:
    assert LIMIT.fits_within(LIMIT)


def test_nothing_fits_within_anything() -> None:
    assert ZERO.fits_within(ZERO)
    assert ZERO.fits_within(LIMIT)


@pytest.mark.parametrize(
    "over",
    [
        Resources(8.01, 16384, 262_144),
        Resources(8.0, 16385, 262_144),
        Resources(8.0, 16384, 262_145),
    ],
    ids=["cpu", "memory", "storage"],
)
def test_resources_over_the_limit_on_any_axis_do_not_fit(over: Resources) -> None:
    assert not over.fits_within(LIMIT)


def test_float_noise_in_summed_cores_does_not_break_a_fit() -> None:
    summed = Resources(0.1, 0, 0) + Resources(0.1, 0, 0) + Resources(0.1, 0, 0)

    assert summed.cpu_cores != 0.3
    assert summed.fits_within(Resources(0.3, 0, 0))


# ---- Taint -----------------------------------------------------------------------------


def test_a_prefer_no_schedule_taint_is_always_tolerated() -> None:
    assert Taint("gpu", "busy", "PreferNoSchedule").is_tolerated_by(())


@pytest.mark.parametrize("effect", ["NoSchedule", "NoExecute"])
def test_a_hard_taint_is_not_tolerated_without_a_toleration(effect: str) -> None:
    assert not Taint("gpu", "busy", effect).is_tolerated_by(())


def test_a_toleration_with_the_same_key_and_value_tolerates_the_taint() -> None:
    assert Taint("zone", "quarantine").is_tolerated_by((Toleration("zone", "quarantine"),))


def test_a_toleration_without_a_value_tolerates_any_value_of_its_key() -> None:
    assert Taint("zone", "quarantine").is_tolerated_by((Toleration("zone"),))
    assert Taint("zone").is_tolerated_by((Toleration("zone"),))


def test_a_toleration_with_another_value_does_not_tolerate_the_taint() -> None:
    assert not Taint("zone", "quarantine").is_tolerated_by((Toleration("zone", "eu"),))


def test_a_toleration_with_another_key_does_not_tolerate_the_taint() -> None:
    assert not Taint("zone", "quarantine").is_tolerated_by((Toleration("pool", "quarantine"),))


def test_one_matching_toleration_among_many_is_enough() -> None:
    tolerations = (Toleration("pool", "a"), Toleration("zone", "quarantine"), Toleration("x"))

    assert Taint("zone", "quarantine").is_tolerated_by(tolerations)


def test_an_empty_taint_value_is_matched_by_an_empty_toleration_value() -> None:
    assert Taint("maintenance").is_tolerated_by((Toleration("maintenance", ""),))


# ---- DeviceRequirements ----------------------------------------------------------------


def test_requirements_that_ask_nothing_describe_any_device() -> None:
    assert DeviceRequirements().describe() == "any device"


def test_requirements_describe_every_constraint_with_labels_sorted() -> None:
    requirements = DeviceRequirements(
        min_cpu=2.0,
        min_memory_mb=4096,
        min_storage_mb=32768,
        android_version="14",
        labels={"zone": "eu", "pool": "ci"},
    )

    assert requirements.describe() == (
        "≥ 2 cores, ≥ 4096 MB memory, ≥ 32768 MB storage, Android 14, pool=ci, zone=eu"
    )


def test_requirements_describe_fractional_cores_without_trailing_zeros() -> None:
    assert DeviceRequirements(min_cpu=0.5).describe() == "≥ 0.5 cores"


def test_requirements_describe_only_what_they_ask() -> None:
    assert DeviceRequirements(min_memory_mb=2048, labels={"pool": "a"}).describe() == (
        "≥ 2048 MB memory, pool=a"
    )


def test_the_minimum_of_requirements_is_their_resource_floor() -> None:
    requirements = DeviceRequirements(min_cpu=1.5, min_memory_mb=3072, min_storage_mb=8192)

    assert requirements.minimum == Resources(1.5, 3072, 8192)


@pytest.mark.parametrize(
    ("requirements", "problem"),
    [
        (DeviceRequirements(min_memory_mb=int("9" * 400)), "minMemory must be between"),
        (DeviceRequirements(min_cpu=float("nan")), "minCpu must be finite"),
        (DeviceRequirements(min_storage_mb=-1), "minStorage must be between"),
        (DeviceRequirements(labels={"k" * 64: "v"}), "label keys"),
        (DeviceRequirements(labels={"k": "v\x00"}), "NUL"),
        (DeviceRequirements(android_version="1" * 40), "androidVersion"),
        (DeviceRequirements(tolerations=(Toleration("a\x00"),)), "NUL"),
    ],
)
def test_requirements_beyond_any_fleet_say_why(
    requirements: DeviceRequirements, problem: str
) -> None:
    found = requirements.out_of_bounds()

    assert found is not None and problem in found


def test_requirements_within_bounds_have_no_problem() -> None:
    within = DeviceRequirements(
        1024, 16_777_216, 1_073_741_824, "14", {"k" * 63: "v" * 253}, (Toleration("gpu"),)
    )

    assert within.out_of_bounds() is None


def test_an_unsatisfiable_request_keeps_its_constraint_across_pickling() -> None:
    original = Unsatisfiable("no device has ≥ 64 cores; the largest has 8 cores", "cpu")

    restored = pickle.loads(pickle.dumps(original))

    assert (restored.detail, restored.constraint, restored.code) == (
        original.detail,
        "cpu",
        "unsatisfiable",
    )
