"""Reading workload logs as replay jobs (``scheduler.domain.replay.TraceJob``):

* the Standard Workload Format of the Parallel Workloads Archive (``.swf``, ``.swf.gz``): a
  job's submit time (field 2), run time (4), user (12); jobs that did not run are skipped.
  The log has no tiers: a user's tier is fixed by a hash of its id (a third each), so a
  replay shows how tiers fare on the same stream.
* the Alibaba GPU cluster trace (``openb_pod_list_*.csv``): a pod's creation time, its run
  from scheduling to deletion, its QoS class as user and tier (``LS`` and ``Guaranteed``:
  enterprise, ``Burstable``: standard, ``BE``: free).
"""

from __future__ import annotations

import csv
import gzip
import zlib
from pathlib import Path

from scheduler.domain.replay import TIERS, TraceJob

QOS_TIERS = {"LS": "enterprise", "Guaranteed": "enterprise", "Burstable": "standard", "BE": "free"}


def read_trace(path: Path, limit: int | None = None) -> list[TraceJob]:
    """The first ``limit`` jobs of a trace, by its format (``.swf[.gz]`` or ``.csv``).

    Raises:
        ValueError: a file of neither format.
    """
    name = path.name
    if name.endswith((".swf", ".swf.gz")):
        return _swf(path, limit)
    if name.endswith(".csv"):
        return _pods(path, limit)
    raise ValueError(f"{name}: a trace is .swf, .swf.gz or an Alibaba pod list .csv")


def _swf(path: Path, limit: int | None) -> list[TraceJob]:
    jobs: list[TraceJob] = []
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as lines:
        for line in lines:
            if line.startswith(";") or not line.strip():
                continue
            fields = line.split()
            submit, runtime, user = float(fields[1]), float(fields[3]), fields[11]
            if runtime <= 0:
                continue
            tier = TIERS[zlib.crc32(user.encode()) % len(TIERS)]
            jobs.append(TraceJob(submit, runtime, f"user-{user}", tier))
            if len(jobs) == limit:
                break
    return jobs


def _pods(path: Path, limit: int | None) -> list[TraceJob]:
    jobs: list[TraceJob] = []
    with path.open(newline="") as rows:
        for row in csv.DictReader(rows):
            created = float(row["creation_time"])
            started = float(row["scheduled_time"] or created)
            ended = float(row["deletion_time"] or 0)
            if ended <= started:
                continue
            qos = row["qos"]
            jobs.append(TraceJob(created, ended - started, qos, QOS_TIERS.get(qos, "standard")))
            if len(jobs) == limit:
                break
    return jobs
