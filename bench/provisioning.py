"""Packing quality on the Alibaba GPU trace of 2023 (issue 13 §3): the trace's pods replayed
as device creations on its 1,213 GPU hosts, in arrival order, without departures, until the
cluster saturates; for each rule the share of GPU, CPU and memory capacity allocated when the
first creation fails and when 5% have failed, the GPU capacity stranded then, and the time to
place one device.

    python -m bench.provisioning                      # every rule, the whole trace
    python -m bench.provisioning --rules best_fit,fgd --markdown
    python -m bench.provisioning --plan-timing        # 1,000 devices on 1,000 hosts

Past the trace's own pods (they ask for 98% of its GPUs), pods drawn from it at random
(seeded) keep arriving, up to 130% of the GPU capacity, as the ATC '23 simulator does.
Trace: Alibaba Cluster Trace Program, cluster-trace-gpu-v2023 (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from placement.gpu_packing import (
    FULL,
    Cluster,
    Fgd,
    GpuDevice,
    GpuHost,
    Rule,
    Workload,
    best_fit,
    first_fit,
)

TRACE = Path(__file__).resolve().parents[2] / "shared" / "traces" / "alibaba-gpu-v2023"
OVERSUBSCRIBE = 1.3


def load_hosts(folder: Path) -> list[GpuHost]:
    with (folder / "openb_node_list_gpu_node.csv").open() as f:
        return [
            GpuHost(r["sn"], int(r["cpu_milli"]), int(r["memory_mib"]), int(r["gpu"]), r["model"])
            for r in csv.DictReader(f)
        ]


def load_devices(folder: Path, name: str = "openb_pod_list_default.csv") -> list[GpuDevice]:
    """The pods in arrival order (creation time, then name)."""
    with (folder / name).open() as f:
        rows = sorted(csv.DictReader(f), key=lambda r: (int(r["creation_time"]), r["name"]))
    devices = []
    for r in rows:
        count = int(r["num_gpu"])
        milli = min(FULL, max(0, int(r["gpu_milli"]))) if count else 0
        models = tuple(m for m in r["gpu_spec"].split("|") if m)
        devices.append(
            GpuDevice(r["name"], int(r["cpu_milli"]), int(r["memory_mib"]), count, milli, models)
        )
    return devices


def arrivals(devices: Sequence[GpuDevice], gpu_capacity: int, seed: int) -> list[GpuDevice]:
    """The trace, then pods drawn from it until they ask for 130% of the GPUs."""
    out = list(devices)
    asked = sum(d.gpu_total for d in out)
    draw = random.Random(seed)
    while asked < OVERSUBSCRIBE * gpu_capacity:
        d = draw.choice(devices)
        out.append(d)
        asked += d.gpu_total
    return out


@dataclass
class Outcome:
    rule: str
    at_first_failure: tuple[float, float, float]  # GPU, CPU, memory allocated (share)
    at_five_percent: tuple[float, float, float]
    placed: int
    seconds_per_device: float


def replay(
    hosts: Sequence[GpuHost], devices: Sequence[GpuDevice], name: str, rule: Rule
) -> Outcome:
    cluster = Cluster(hosts)
    capacity = (
        cluster.gpu_left.sum(),
        int(cluster.cpu_left.sum()),
        int(cluster.mem_left.sum()),
    )

    def allocated() -> tuple[float, float, float]:
        return (
            1 - cluster.gpu_left.sum() / capacity[0],
            1 - cluster.cpu_left.sum() / capacity[1],
            1 - cluster.mem_left.sum() / capacity[2],
        )

    first: tuple[float, float, float] | None = None
    five: tuple[float, float, float] | None = None
    failed = placed = 0
    started = time.perf_counter()
    for arrived, d in enumerate(devices, start=1):
        where = rule(cluster, d)
        if where is None:
            failed += 1
            first = first or allocated()
            if failed >= 0.05 * arrived:
                five = allocated()
                break
            continue
        cluster.place(d, where)
        placed += 1
    elapsed = time.perf_counter() - started
    end = allocated()
    return Outcome(name, first or end, five or end, placed, elapsed / max(1, placed + failed))


def plan_timing(
    hosts: Sequence[GpuHost], devices: Sequence[GpuDevice], rule: Rule, seeds: int
) -> list[float]:
    """Seconds to place 1,000 devices (drawn from the trace) on 1,000 hosts, per seed."""
    times = []
    for seed in range(seeds):
        draw = random.Random(seed)
        batch = [draw.choice(devices) for _ in range(1000)]
        cluster = Cluster(hosts[:1000])
        started = time.perf_counter()
        for d in batch:
            where = rule(cluster, d)
            if where is not None:
                cluster.place(d, where)
        times.append(time.perf_counter() - started)
    return times


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trace", type=Path, default=TRACE)
    parser.add_argument("--rules", default="first_fit,best_fit,fgd")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--order",
        choices=("arrival", "shuffled"),
        default="arrival",
        help="the trace's creation order, or shuffled by --seed (as the ATC '23 simulator)",
    )
    parser.add_argument(
        "--coverage",
        type=float,
        default=1.0,
        help="share of the trace's devices whose shapes make FGD's target workload (the"
        " paper's 0.95 leaves out the rare multi-GPU shapes, which then fail first)",
    )
    parser.add_argument(
        "--by-count",
        action="store_true",
        help="weigh FGD's shapes by how often they come only (not by the whole GPUs they ask)",
    )
    parser.add_argument("--plan-timing", action="store_true")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)

    hosts = load_hosts(args.trace)
    trace = load_devices(args.trace)
    rules: dict[str, Rule] = {
        "first_fit": first_fit,
        "best_fit": best_fit,
        "fgd": Fgd(Workload.of(trace, args.coverage, by_gpus=not args.by_count)),
    }
    chosen = [r.strip() for r in args.rules.split(",")]
    if args.plan_timing:
        for name in chosen:
            times = plan_timing(hosts, trace, rules[name], args.seeds)
            p95 = statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0]
            print(
                f"{name}: 1,000 devices on 1,000 hosts: p50 {statistics.median(times):.3f} s, p95 {p95:.3f} s"
            )
        return
    gpus = sum(h.gpus for h in hosts) * FULL
    ordered = list(trace)
    if args.order == "shuffled":
        random.Random(args.seed).shuffle(ordered)
    devices = arrivals(ordered, gpus, args.seed)
    print(
        f"{len(hosts)} hosts, {sum(h.gpus for h in hosts)} GPUs; {len(trace)} pods in the trace, {len(devices)} arriving"
    )
    outcomes = [replay(hosts, devices, name, rules[name]) for name in chosen]
    best = next((o for o in outcomes if o.rule == "best_fit"), None)
    head = "| rule | GPU / CPU / memory allocated at the first failure | at 5% failed | GPU stranded at 5% | vs best-fit | placed | ms per device |"
    print(head if args.markdown else head.replace("|", " ").strip())
    if args.markdown:
        print("|---|---|---|---|---|---|---|")
    for o in outcomes:
        stranded = 1 - o.at_five_percent[0]
        ratio = stranded / (1 - best.at_five_percent[0]) if best else float("nan")
        cells = [
            o.rule,
            " / ".join(f"{100 * x:.1f}%" for x in o.at_first_failure),
            " / ".join(f"{100 * x:.1f}%" for x in o.at_five_percent),
            f"{100 * stranded:.1f}%",
            f"{ratio:.2f}×",
            str(o.placed),
            f"{1000 * o.seconds_per_device:.2f}",
        ]
        print("| " + " | ".join(cells) + " |" if args.markdown else "  ".join(cells))


if __name__ == "__main__":
    main()
