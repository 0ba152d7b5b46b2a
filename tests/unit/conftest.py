"""Unit-test guard rails: nothing under ``tests/unit`` may start Ray, and Hypothesis keeps
its caches out of the work tree."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import NoReturn

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis caches literal constants of the code under test in ``.hypothesis/`` in the
# working directory even with ``database=None``; keep that out of the repository.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "phonefleet-unit-hypothesis")


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
