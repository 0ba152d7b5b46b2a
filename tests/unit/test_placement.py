from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from placement.greedy import best_fit_scores, rank_best_fit
from placement.model import CandidateDevices, as_vector
from scheduler.domain.resources import Resources

Row = tuple[object, float, float, float, float]


def minimum(cpu: float, memory: float, storage: float) -> np.ndarray:
    return np.asarray([cpu, memory, storage], dtype=np.float64)


def ranked_ids(
    candidates: CandidateDevices, floor: np.ndarray, ceiling: np.ndarray | None = None
) -> list[object]:
    return [candidates.ids[i] for i in rank_best_fit(candidates, floor, ceiling)]


# ---- examples --------------------------------------------------------------------------


def test_no_candidates_rank_to_nothing() -> None:
    empty = CandidateDevices.from_rows([])

    ranked = rank_best_fit(empty, minimum(1, 1, 1))

    assert ranked.shape == (0,)
    assert ranked.dtype == np.intp
    assert best_fit_scores(empty, minimum(1, 1, 1)).shape == (0,)


def test_devices_below_the_minimum_are_not_ranked() -> None:
    candidates = CandidateDevices.from_rows(
        [
            ("too-few-cores", 1.0, 8192, 65536, 0.0),
            ("too-little-memory", 4.0, 2048, 65536, 0.0),
            ("too-little-storage", 4.0, 8192, 1024, 0.0),
            ("fits", 4.0, 8192, 65536, 0.0),
        ]
    )

    assert ranked_ids(candidates, minimum(2, 4096, 32768)) == ["fits"]


def test_a_device_exactly_at_the_minimum_is_ranked() -> None:
    candidates = CandidateDevices.from_rows([("exact", 2.0, 4096, 32768, 0.0)])

    assert ranked_ids(candidates, minimum(2, 4096, 32768)) == ["exact"]


def test_when_nothing_meets_the_minimum_nothing_is_ranked() -> None:
    candidates = CandidateDevices.from_rows([("a", 1.0, 1024, 1024, 0.5)])

    assert ranked_ids(candidates, minimum(2, 4096, 32768)) == []


def test_the_device_with_the_least_surplus_ranks_first() -> None:
    candidates = CandidateDevices.from_rows(
        [
            ("large", 8.0, 16384, 262144, 0.5),
            ("snug", 2.0, 4096, 32768, 0.5),
            ("medium", 4.0, 8192, 131072, 0.5),
        ]
    )

    assert ranked_ids(candidates, minimum(2, 4096, 32768)) == ["snug", "medium", "large"]


def test_equally_fitting_devices_rank_toward_the_busier_node() -> None:
    candidates = CandidateDevices.from_rows(
        [
            ("on-idle-node", 4.0, 8192, 65536, 0.0),
            ("on-full-node", 4.0, 8192, 65536, 0.9),
            ("on-half-node", 4.0, 8192, 65536, 0.5),
        ]
    )

    assert ranked_ids(candidates, minimum(2, 4096, 32768)) == [
        "on-full-node",
        "on-half-node",
        "on-idle-node",
    ]


def test_identical_devices_on_equally_busy_nodes_keep_their_order() -> None:
    rows: list[Row] = [(f"d{i}", 4.0, 8192, 65536, 0.25) for i in range(5)]

    assert ranked_ids(CandidateDevices.from_rows(rows), minimum(1, 1, 1)) == [
        "d0",
        "d1",
        "d2",
        "d3",
        "d4",
    ]


def test_devices_larger_than_the_quota_still_admits_are_not_ranked() -> None:
    candidates = CandidateDevices.from_rows(
        [
            ("over-quota", 16.0, 32768, 262144, 0.9),
            ("within-quota", 4.0, 8192, 65536, 0.0),
        ]
    )

    ranked = ranked_ids(candidates, minimum(2, 4096, 32768), minimum(8, 16384, 131072))

    assert ranked == ["within-quota"]


def test_a_resources_value_becomes_a_row_in_column_order() -> None:
    vector = as_vector(Resources(2.5, 4096, 32768))

    assert vector.tolist() == [2.5, 4096.0, 32768.0]
    assert vector.dtype == np.float64


# ---- properties ------------------------------------------------------------------------

half_cores = st.integers(0, 64).map(lambda n: n / 2)
memory = st.sampled_from([0, 1024, 2048, 3072, 4096, 6144, 8192, 12288, 16384])
storage = st.integers(0, 16).map(lambda n: n * 16384)
occupancy = st.floats(0.0, 1.0, allow_nan=False)

rows = st.lists(
    st.tuples(half_cores, memory, storage, occupancy),
    max_size=40,
).map(lambda rs: [(f"d{i}", *r) for i, r in enumerate(rs)])

floors = st.tuples(st.integers(0, 32).map(lambda n: n / 2), memory, storage)


@settings(database=None, max_examples=300, deadline=None)
@given(rows=rows, floor=floors)
def test_best_fit_ranks_every_fitting_device_once_and_the_lowest_score_first(
    rows: list[Row], floor: tuple[float, float, float]
) -> None:
    candidates = CandidateDevices.from_rows(rows)
    wanted = minimum(*floor)

    ranked = rank_best_fit(candidates, wanted).tolist()

    fitting = {i for i, r in enumerate(rows) if all(r[c + 1] >= wanted[c] for c in range(3))}
    assert all(i in fitting for i in ranked), "a ranked device is below the minimum"
    assert sorted(ranked) == sorted(fitting), "a fitting device is missing or ranked twice"
    if fitting:
        scores = best_fit_scores(candidates, wanted)
        assert scores[ranked[0]] == min(scores[i] for i in fitting)
        assert all(scores[a] <= scores[b] for a, b in itertools.pairwise(ranked))


@settings(database=None, max_examples=200, deadline=None)
@given(rows=rows, floor=floors, ceiling=floors)
def test_best_fit_with_a_quota_ranks_exactly_the_devices_between_minimum_and_maximum(
    rows: list[Row], floor: tuple[float, float, float], ceiling: tuple[float, float, float]
) -> None:
    candidates = CandidateDevices.from_rows(rows)
    low, high = minimum(*floor), minimum(*ceiling)

    ranked = rank_best_fit(candidates, low, high).tolist()

    within = {i for i, r in enumerate(rows) if all(low[c] <= r[c + 1] <= high[c] for c in range(3))}
    assert sorted(ranked) == sorted(within)
