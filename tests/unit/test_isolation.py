from __future__ import annotations

import pytest


def test_a_unit_test_cannot_start_ray() -> None:
    ray = pytest.importorskip("ray")

    with pytest.raises(RuntimeError, match="must never start Ray"):
        ray.init()
