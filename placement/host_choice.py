"""Where a new device would go: the host a device of a given spec fits best, by strategy.

A host fits when it is schedulable (ready), carries every wanted label, has no taint the
request does not tolerate, has a free device slot, and its free cpu, memory and storage
(capacity minus its devices' specs) hold the spec. Among those, each strategy scores a host
in ``[0, SCALE]`` from its utilisation ``u_k`` after the device lands (``k``: cpu, memory,
storage) and its device slots:

* ``binpack``: ``mean_k u_k`` — the fullest host that fits, so empty ones stay empty;
* ``spread``: ``1 - devices / max_devices`` before it lands — the fewest devices first;
* ``least_loaded``: ``mean_k free_k / largest host's capacity_k`` — the most free capacity;
* ``balanced``: ``0.75 (1 - mean_k u_k) + 0.25 (1 - (max_k u_k - min_k u_k))`` — low and
  even use of the three resources.

A feasible preferred host wins whatever its score (the caller asked for it). Ties go to the
host named first (callers pass hosts by name), so the choice is deterministic. Pure: no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from placement.problem import Strategy
from placement.strategies import SCALE

RESOURCES = ("cpu", "memory", "storage")


@dataclass(frozen=True, slots=True)
class Host:
    node_id: uuid.UUID
    name: str
    #: cpu cores, memory MB, storage MB its devices may ask for together (overcommit in)
    capacity: tuple[float, float, float]
    used: tuple[float, float, float]  # its devices' specs, summed
    max_devices: int
    devices: int
    labels: Mapping[str, str]
    schedulable: bool  # ready (not cordoned, draining, in maintenance, offline)
    #: It carries a taint the request does not tolerate.
    tainted: bool = False


@dataclass(frozen=True, slots=True)
class HostChoice:
    host: Host
    score: int
    reason: str
    #: Each resource's use of the host once the device lands, in [0, 1].
    utilisation_after: dict[str, float]


def rank_hosts(
    hosts: Sequence[Host],
    spec: tuple[float, float, float],
    strategy: Strategy,
    *,
    labels: Mapping[str, str] | None = None,
    preferred: uuid.UUID | None = None,
) -> list[HostChoice]:
    """The hosts a device of ``spec`` fits on, best first (a feasible ``preferred`` first)."""
    fitting = [h for h in hosts if _refusal(h, spec, labels or {}) is None]
    largest = tuple(max((h.capacity[k] for h in fitting), default=1.0) or 1.0 for k in range(3))
    choices = [_choice(h, spec, strategy, largest) for h in fitting]
    choices.sort(key=lambda c: (c.host.node_id != preferred, -c.score))
    if choices and choices[0].host.node_id == preferred:
        best = choices[0]
        choices[0] = HostChoice(best.host, best.score, "the preferred host", best.utilisation_after)
    return choices


def why_none_fits(
    hosts: Sequence[Host],
    spec: tuple[float, float, float],
    labels: Mapping[str, str] | None = None,
) -> str:
    """What keeps every host out, counted by the first reason each fails on."""
    reasons: dict[str, int] = {}
    for host in hosts:
        reason = _refusal(host, spec, labels or {}) or "fits"
        reasons[reason] = reasons.get(reason, 0) + 1
    if not reasons:
        return "no host is registered"
    return "; ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))


def _refusal(host: Host, spec: tuple[float, float, float], labels: Mapping[str, str]) -> str | None:
    if not host.schedulable:
        return "not schedulable"
    if any(host.labels.get(k) != v for k, v in labels.items()):
        return "without the labels"
    if host.tainted:
        return "tainted"
    if host.devices >= host.max_devices:
        return "without a free device slot"
    for k, name in enumerate(RESOURCES):
        if host.used[k] + spec[k] > host.capacity[k] + 1e-9:
            return f"without the free {name}"
    return None


def _choice(
    host: Host, spec: tuple[float, float, float], strategy: Strategy, largest: tuple[float, ...]
) -> HostChoice:
    after = [
        (host.used[k] + spec[k]) / host.capacity[k] if host.capacity[k] else 1.0 for k in range(3)
    ]
    mean_after = sum(after) / 3
    if strategy is Strategy.BINPACK:
        t, why = mean_after, "the fullest host it fits on"
    elif strategy is Strategy.SPREAD:
        t, why = 1 - host.devices / max(host.max_devices, 1), "the host with the fewest devices"
    elif strategy is Strategy.LEAST_LOADED:
        free = [(host.capacity[k] - host.used[k]) / largest[k] for k in range(3)]
        t, why = sum(free) / 3, "the host with the most free capacity"
    else:
        t = 0.75 * (1 - mean_after) + 0.25 * (1 - (max(after) - min(after)))
        why = "the host it leaves least and most evenly used"
    use = dict(zip(RESOURCES, (round(u, 4) for u in after), strict=True))
    percent = ", ".join(f"{name} {u:.0%}" for name, u in use.items())
    reason = f"{strategy.value}: {why} ({percent} used after)"
    return HostChoice(host, round(SCALE * min(max(t, 0.0), 1.0)), reason, use)
