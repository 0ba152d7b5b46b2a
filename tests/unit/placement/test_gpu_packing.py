"""The GPU packing rules against a brute-force checker on small instances: no rule ever
overfills a host or a GPU, gives a whole-GPU device a shared GPU, or ignores a model; a rule
refuses a device only when no placement exists; and FGD's choice adds the least
fragmentation of every possible placement (computed from the definition, one GPU at a
time)."""

from __future__ import annotations

import itertools
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from placement.gpu_packing import (
    FULL,
    Cluster,
    Fgd,
    GpuDevice,
    GpuHost,
    Placement,
    Workload,
    best_fit,
    first_fit,
)

MODELS = ("A", "B")

hosts_st = st.lists(
    st.builds(
        GpuHost,
        name=st.uuids().map(str),
        cpu_milli=st.sampled_from([4000, 8000, 16000]),
        memory_mib=st.sampled_from([8192, 16384]),
        gpus=st.integers(0, 4),
        model=st.sampled_from(MODELS),
    ),
    min_size=1,
    max_size=4,
)


@st.composite
def devices_st(draw: st.DrawFn) -> GpuDevice:
    kind = draw(st.sampled_from(["none", "share", "whole"]))
    cpu = draw(st.sampled_from([500, 1000, 2000, 4000]))
    mem = draw(st.sampled_from([1024, 2048, 4096]))
    models = draw(st.sampled_from([(), ("A",), ("B",), ("A", "B")]))
    if kind == "none":
        return GpuDevice("d", cpu, mem)
    if kind == "share":
        return GpuDevice("d", cpu, mem, 1, draw(st.sampled_from([250, 500, 700])), models)
    return GpuDevice("d", cpu, mem, draw(st.integers(1, 3)), FULL, models)


def brute_placements(hosts: list[GpuHost], used: dict, d: GpuDevice) -> list[Placement]:
    """Every placement of ``d`` given what ``used`` holds, from the definition."""
    found = []
    for h, host in enumerate(hosts):
        cpu = sum(x.cpu_milli for x, _ in used[h])
        mem = sum(x.memory_mib for x, _ in used[h])
        if cpu + d.cpu_milli > host.cpu_milli or mem + d.memory_mib > host.memory_mib:
            continue
        if d.num_gpu == 0:
            found.append(Placement(h, ()))
            continue
        if d.models and host.model not in d.models:
            continue
        left = [
            FULL - sum(m for x, p in used[h] for g, m in p.gpus if g == i) for i in range(host.gpus)
        ]
        for combo in itertools.combinations(range(host.gpus), d.num_gpu):
            if all(left[g] >= d.gpu_milli for g in combo):
                found.append(Placement(h, tuple((g, d.gpu_milli) for g in combo)))
    return found


def check(hosts: list[GpuHost], used: dict) -> None:
    for h, host in enumerate(hosts):
        placed = used[h]
        assert sum(d.cpu_milli for d, _ in placed) <= host.cpu_milli
        assert sum(d.memory_mib for d, _ in placed) <= host.memory_mib
        per_gpu: dict[int, int] = defaultdict(int)
        for d, p in placed:
            assert len({g for g, _ in p.gpus}) == d.num_gpu
            assert not d.models or not d.num_gpu or host.model in d.models
            for g, milli in p.gpus:
                assert 0 <= g < host.gpus
                per_gpu[g] += milli
        assert all(total <= FULL for total in per_gpu.values())


@settings(max_examples=150, deadline=None)
@given(hosts=hosts_st, devices=st.lists(devices_st(), min_size=1, max_size=14))
def test_no_rule_breaks_a_constraint_or_refuses_what_fits(
    hosts: list[GpuHost], devices: list[GpuDevice]
) -> None:
    for rule in (first_fit, best_fit, Fgd(Workload.of(devices))):
        cluster, used = Cluster(hosts), defaultdict(list)
        for d in devices:
            options = brute_placements(hosts, used, d)
            where = rule(cluster, d)
            if where is None:
                assert not options, (rule, d)
                continue
            assert where in options or d.num_gpu > 1, (rule, d, where)
            cluster.place(d, where)
            used[where.host].append((d, where))
            check(hosts, used)


def frag_of(host: GpuHost, cpu_left: int, left: list[int], w: Workload) -> float:
    """One host's fragmentation, one shape and one GPU at a time (the paper's definition)."""
    total = 0.0
    for t in range(len(w.weight)):
        cpu, share, count, models = int(w.cpu[t]), int(w.milli[t]), int(w.count[t]), w.models[t]
        access = not models or host.model in models
        fits = share > 0 and cpu_left >= cpu and access
        fits = fits and sum(g >= share for g in left) >= count
        frag = sum(g for g in left if g < share) if fits else sum(left)
        total += w.weight[t] * frag
    return total


@settings(max_examples=150, deadline=None)
@given(hosts=hosts_st, devices=st.lists(devices_st(), min_size=2, max_size=10))
def test_fgd_takes_the_placement_adding_the_least_fragmentation(
    hosts: list[GpuHost], devices: list[GpuDevice]
) -> None:
    workload = Workload.of(devices)
    fgd, cluster, used = Fgd(workload), Cluster(hosts), defaultdict(list)
    for d in devices:
        options = brute_placements(hosts, used, d)
        where = fgd(cluster, d)
        if where is None:
            continue

        def delta(p: Placement, d: GpuDevice = d) -> float:
            host = hosts[p.host]
            cpu_left = int(cluster.cpu_left[p.host])
            left = [int(g) for g in cluster.gpu_left[p.host][: host.gpus]]
            after = list(left)
            for g, milli in p.gpus:
                after[g] -= milli
            before = frag_of(host, cpu_left, left, workload)
            return frag_of(host, cpu_left - d.cpu_milli, after, workload) - before

        # whole GPUs: FGD (as the simulator) takes a host's first free ones
        comparable = [p for p in options if d.num_gpu <= 1 or p.host != where.host or p == where]
        assert delta(where) <= min(delta(p) for p in comparable) + 1e-6
        cluster.place(d, where)
        used[where.host].append((d, where))
