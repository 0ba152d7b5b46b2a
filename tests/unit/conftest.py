"""Unit-test guard rail: nothing under ``tests/unit`` may start Ray."""

from __future__ import annotations

import importlib.util
from typing import NoReturn

import pytest


class RayStartedInUnitTest(RuntimeError):
    """A unit test (or the code it exercised) called ``ray.init``."""


def _refuse_ray_init(*args: object, **kwargs: object) -> NoReturn:
    raise RayStartedInUnitTest("unit tests must never start Ray; ray.init was called")


@pytest.fixture(autouse=True)
def _ray_cannot_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``ray.init`` raise for the duration of every unit test, if Ray is installed."""
    if importlib.util.find_spec("ray") is None:
        return
    import ray

    monkeypatch.setattr(ray, "init", _refuse_ray_init)
