"""Where a new device goes: only onto hosts it fits, best by the strategy."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from placement.host_choice import Host, rank_hosts, why_none_fits
from placement.problem import Strategy


def host(
    name: str,
    used: tuple[float, float, float] = (0, 0, 0),
    devices: int = 0,
    *,
    capacity: tuple[float, float, float] = (16, 32_768, 100_000),
    max_devices: int = 8,
    labels: dict[str, str] | None = None,
    schedulable: bool = True,
    tainted: bool = False,
) -> Host:
    return Host(
        uuid.uuid4(), name, capacity, used, max_devices, devices, labels or {}, schedulable, tainted
    )


SPEC = (2.0, 4096.0, 8192.0)


def test_binpack_takes_the_fullest_host_and_spread_the_emptiest() -> None:
    full = host("full", (10, 20_000, 50_000), 5)
    empty = host("empty")

    assert rank_hosts([empty, full], SPEC, Strategy.BINPACK)[0].host is full
    assert rank_hosts([full, empty], SPEC, Strategy.SPREAD)[0].host is empty
    assert rank_hosts([full, empty], SPEC, Strategy.LEAST_LOADED)[0].host is empty
    assert rank_hosts([full, empty], SPEC, Strategy.BALANCED)[0].host is empty


def test_balanced_prefers_even_use_of_the_resources() -> None:
    lopsided = host("lopsided", (12, 2048, 10_000), 2)  # cpu heavy, memory idle
    even = host("even", (7, 16_000, 48_000), 2)

    best = rank_hosts([lopsided, even], SPEC, Strategy.BALANCED)[0]

    assert best.host is even and best.reason.startswith("balanced")


def test_hosts_it_does_not_fit_are_out_and_said_why() -> None:
    hosts = [
        host("cordoned", schedulable=False),
        host("tainted", tainted=True, labels={"region": "eu"}),
        host("elsewhere", labels={"region": "us"}),
        host("slots", devices=8),
        host("memory", (0, 30_000, 0)),
    ]

    assert rank_hosts(hosts, SPEC, Strategy.BINPACK, labels={"region": "eu"}) == []
    why = why_none_fits(hosts, SPEC, {"region": "eu"})
    assert why == "1 not schedulable; 1 tainted; 3 without the labels"
    assert why_none_fits(hosts[3:], SPEC) == (
        "1 without a free device slot; 1 without the free memory"
    )


def test_a_preferred_host_wins_when_it_fits_only() -> None:
    full, empty = host("full", (10, 20_000, 50_000), 5), host("empty")

    chosen = rank_hosts([full, empty], SPEC, Strategy.BINPACK, preferred=empty.node_id)[0]
    unfit = host("tiny", capacity=(1, 1024, 1024))
    fallback = rank_hosts([full, unfit], SPEC, Strategy.BINPACK, preferred=unfit.node_id)[0]

    assert chosen.host is empty and chosen.reason == "the preferred host"
    assert fallback.host is full


hosts_st = st.lists(
    st.builds(
        host,
        name=st.text(min_size=1, max_size=4),
        used=st.tuples(st.floats(0, 20), st.floats(0, 40_000), st.floats(0, 120_000)),
        devices=st.integers(0, 9),
        schedulable=st.booleans(),
    ),
    max_size=8,
)


@given(hosts=hosts_st, strategy=st.sampled_from(list(Strategy)))
def test_no_choice_ever_overfills_a_host(hosts: list[Host], strategy: Strategy) -> None:
    for choice in rank_hosts(hosts, SPEC, strategy):
        h = choice.host
        assert h.schedulable and h.devices < h.max_devices
        assert all(h.used[k] + SPEC[k] <= h.capacity[k] + 1e-9 for k in range(3))
        assert 0 <= choice.score <= 1000
    fitting = [
        h
        for h in hosts
        if h.schedulable
        and h.devices < h.max_devices
        and all(h.used[k] + SPEC[k] <= h.capacity[k] for k in range(3))
    ]
    assert len(rank_hosts(hosts, SPEC, strategy)) == len(fitting)
