"""Trace replay, the pure part: the queue's own order on a small fleet, the figures it
reports, and the traces read as jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.domain.replay import TraceJob, compress, replay
from scheduler.jobs.traces import read_trace

#: The shared traces, beside this checkout (or beside the main one, for a CI clone).
TRACES = next(
    (
        path
        for path in (
            Path(__file__).resolve().parents[3] / "shared" / "traces",
            Path("/work/shared/traces"),
        )
        if path.is_dir()
    ),
    Path("shared/traces"),
)


def test_one_device_serves_in_the_queues_order_and_reports_waits_per_tier() -> None:
    jobs = [
        TraceJob(0.0, 600.0, "a", "free"),
        TraceJob(1.0, 600.0, "b", "free"),
        TraceJob(2.0, 600.0, "c", "enterprise"),
    ]

    fifo = replay(jobs, devices=1, policy="fifo", reset_seconds=0.0)
    tiered = replay(jobs, devices=1, policy="priority", reset_seconds=0.0)

    waits = {w.tier: w for w in fifo.waits}
    assert waits["enterprise"].max_seconds == 1198.0  # last in, last served
    assert {w.tier: w for w in tiered.waits}["enterprise"].max_seconds == 598.0  # ahead of b
    assert fifo.jobs == tiered.jobs == 3
    assert fifo.utilization == 1.0 and fifo.makespan_seconds == 1800.0
    assert [w.tier for w in fifo.waits] == ["enterprise", "free"]


def test_fairness_is_one_when_every_user_fares_alike_and_drops_when_one_waits() -> None:
    even = [TraceJob(float(i), 60.0, f"u{i}", "standard") for i in range(4)]
    assert replay(even, devices=4, policy="priority", reset_seconds=0.0).fairness == 1.0
    crowded = [TraceJob(0.0, 3600.0, "big", "standard")] * 3 + [
        TraceJob(1.0, 60.0, "small", "standard")
    ]
    report = replay(crowded, devices=1, policy="fifo", reset_seconds=0.0)
    assert report.fairness < 0.7


def test_resets_keep_a_device_from_the_next_lease() -> None:
    jobs = [TraceJob(0.0, 100.0, "a", "free"), TraceJob(0.0, 100.0, "b", "free")]
    report = replay(jobs, devices=1, policy="fifo", reset_seconds=30.0)
    assert {w.tier: w for w in report.waits}["free"].max_seconds == 130.0


def test_compression_keeps_order_and_runs_and_scales_the_gaps_to_the_load() -> None:
    jobs = [TraceJob(1000.0 + 100 * i, 50.0, "a", "free") for i in range(11)]
    squeezed = compress(jobs, devices=1, load=1.0)
    assert squeezed[0].submit == 0.0 and squeezed[-1].submit == pytest.approx(550.0)
    assert [j.runtime for j in squeezed] == [50.0] * 11


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(KeyError):
        replay([TraceJob(0.0, 1.0, "a", "free")], devices=1, policy="lottery")


@pytest.mark.skipif(not TRACES.is_dir(), reason="the shared traces are not on this machine")
@pytest.mark.parametrize(
    ("name", "tiers"),
    [
        ("pwa-kth-sp2-1996/KTH-SP2-1996-2.1-cln.swf.gz", {"enterprise", "standard", "free"}),
        ("cerit-sc-wagap-2013/wagap-2013.swf.gz", {"enterprise", "standard", "free"}),
        ("alibaba-gpu-v2023/openb_pod_list_default.csv", {"enterprise", "standard", "free"}),
    ],
)
def test_the_shared_traces_read_as_jobs(name: str, tiers: set[str]) -> None:
    jobs = read_trace(TRACES / name, 500)
    assert len(jobs) == 500
    assert all(j.runtime > 0 for j in jobs)
    assert {j.tier for j in jobs} <= tiers
    with pytest.raises(ValueError):
        read_trace(TRACES / "README.md")
