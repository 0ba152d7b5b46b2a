"""Packing new devices onto GPU hosts (issue 13 §3): a host has cpu, memory and GPUs of one
model, each GPU 1000 milli; a device asks for cpu, memory and no GPU, a share of one GPU
(``gpu_milli`` < 1000 on one GPU) or whole GPUs (``num_gpu`` free GPUs), of a model or any.

Rules that choose the host (and the GPU for a share) for one device at a time:

* ``first_fit``: the first host it fits on;
* ``best_fit``: the host left with the least free cpu and GPU (the ATC '23 simulator's
  BestFit: ``1 - ½ (cpu_left - cpu)/128000 - ½ (Σgpu_left - gpu)/8000``);
* ``fgd``: Fragmentation Gradient Descent (Weng et al., ATC '23): the placement that adds the
  least expected fragmentation, where a host's fragmentation for a target workload ``T``
  (device shapes and their shares) is ``Σ_t p_t · frag_t``: the idle GPU milli that a device
  of shape ``t`` could not use there (all of it when ``t`` does not fit, else the GPUs with
  less than ``t``'s share left; a device asking no GPU uses none of them). Ties go to the
  placement leaving its host the least idle GPU.

Baseline rules put a share on the GPU that fits it tightest; whole GPUs are the first free
ones. Pure numpy over the whole cluster per device: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FULL = 1000  # milli per GPU
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class GpuHost:
    name: str
    cpu_milli: int
    memory_mib: int
    gpus: int
    model: str = ""


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """A device to create: ``num_gpu`` 0 (none), 1 with ``gpu_milli`` < 1000 (a share of one
    GPU), or ``num_gpu`` whole GPUs (``gpu_milli`` 1000). ``models``: any of them ("" any)."""

    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int = 0
    gpu_milli: int = 0
    models: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int, int, tuple[str, ...]]:
        return (self.cpu_milli, self.gpu_milli if self.num_gpu else 0, self.num_gpu, self.models)

    @property
    def gpu_total(self) -> int:
        return self.num_gpu * self.gpu_milli


@dataclass(frozen=True, slots=True)
class Placement:
    host: int
    #: The GPUs it takes (index on the host) and how much of each.
    gpus: tuple[tuple[int, int], ...]


class Cluster:
    """What is left on every host, as arrays (``gpu_left``: hosts × most GPUs on a host; a
    GPU a host does not have has nothing left)."""

    def __init__(self, hosts: Sequence[GpuHost]) -> None:
        self.hosts = list(hosts)
        width = max((h.gpus for h in hosts), default=0) or 1
        self.cpu_left: Ints = np.array([h.cpu_milli for h in hosts], dtype=np.int64)
        self.mem_left: Ints = np.array([h.memory_mib for h in hosts], dtype=np.int64)
        self.gpu_left: Ints = np.zeros((len(hosts), width), dtype=np.int64)
        for i, h in enumerate(hosts):
            self.gpu_left[i, : h.gpus] = FULL
        self.models = np.array([h.model for h in hosts], dtype=object)

    def model_ok(self, models: tuple[str, ...]) -> npt.NDArray[np.bool_]:
        if not models:
            return np.ones(len(self.hosts), dtype=bool)
        ok: npt.NDArray[np.bool_] = np.isin(self.models, list(models))
        return ok

    def feasible(self, d: GpuDevice) -> npt.NDArray[np.bool_]:
        """The hosts ``d`` fits on."""
        ok: npt.NDArray[np.bool_] = (self.cpu_left >= d.cpu_milli) & (self.mem_left >= d.memory_mib)
        if d.num_gpu == 0:
            return ok
        ok &= self.model_ok(d.models)
        ok &= (self.gpu_left >= d.gpu_milli).sum(axis=1) >= d.num_gpu
        return ok

    def gpus_for(self, host: int, d: GpuDevice) -> tuple[tuple[int, int], ...]:
        """The baselines' GPUs on ``host``: a share on the tightest GPU that holds it, whole
        GPUs the first free ones."""
        left = self.gpu_left[host]
        if d.num_gpu == 0:
            return ()
        if d.gpu_milli < FULL:
            fitting = np.flatnonzero(left >= d.gpu_milli)
            return ((int(fitting[np.argmin(left[fitting])]), d.gpu_milli),)
        free = np.flatnonzero(left == FULL)[: d.num_gpu]
        return tuple((int(g), FULL) for g in free)

    def place(self, d: GpuDevice, placement: Placement) -> None:
        """Take ``d``'s resources on the host.

        Raises:
            ValueError: it does not fit there (a rule's bug: never silently overfill).
        """
        h = placement.host
        if self.cpu_left[h] < d.cpu_milli or self.mem_left[h] < d.memory_mib:
            raise ValueError(f"{d.name} does not fit on {self.hosts[h].name}")
        if len(placement.gpus) != d.num_gpu or len({g for g, _ in placement.gpus}) != d.num_gpu:
            raise ValueError(f"{d.name} needs {d.num_gpu} distinct GPUs")
        for g, milli in placement.gpus:
            if milli != d.gpu_milli or self.gpu_left[h, g] < milli:
                raise ValueError(f"GPU {g} of {self.hosts[h].name} cannot hold {d.name}")
        self.cpu_left[h] -= d.cpu_milli
        self.mem_left[h] -= d.memory_mib
        for g, milli in placement.gpus:
            self.gpu_left[h, g] -= milli


Rule = Callable[[Cluster, GpuDevice], Placement | None]


def first_fit(cluster: Cluster, d: GpuDevice) -> Placement | None:
    fits = np.flatnonzero(cluster.feasible(d))
    if not len(fits):
        return None
    return Placement(int(fits[0]), cluster.gpus_for(int(fits[0]), d))


def best_fit(cluster: Cluster, d: GpuDevice) -> Placement | None:
    fits = np.flatnonzero(cluster.feasible(d))
    if not len(fits):
        return None
    cpu_after = cluster.cpu_left[fits] - d.cpu_milli
    gpu_after = cluster.gpu_left[fits].sum(axis=1) - d.gpu_total
    score = 1 - 0.5 * cpu_after / 128_000 - 0.5 * gpu_after / 8_000
    host = int(fits[np.argmax(score)])
    return Placement(host, cluster.gpus_for(host, d))


@dataclass(frozen=True, slots=True)
class Workload:
    """The target workload: device shapes (cpu, share, count, models) and their weights."""

    cpu: Ints
    milli: Ints
    count: Ints
    models: tuple[tuple[str, ...], ...]
    weight: npt.NDArray[np.float64]

    @classmethod
    def of(
        cls, devices: Sequence[GpuDevice], coverage: float = 1.0, *, by_gpus: bool = True
    ) -> Workload:
        """The most frequent shapes that make ``coverage`` of the devices, weighted by how
        often they come (the ATC '23 simulator keeps 95%) and, ``by_gpus``, by the whole GPUs
        each asks for (its ``gpuResWeight``): a rare 8-GPU shape then counts for what it
        takes, and hosts that can still hold one are kept so."""
        counts: Counter[tuple[int, int, int, tuple[str, ...]]] = Counter()
        for d in devices:
            counts[d.shape] += max(1, d.num_gpu) if by_gpus and d.gpu_milli >= FULL else 1
        ranked = counts.most_common()
        kept, total = [], 0
        for shape, n in ranked:
            kept.append((shape, n))
            total += n
            if total >= coverage * sum(counts.values()):
                break
        return cls(
            cpu=np.array([s[0] for s, _ in kept], dtype=np.int64),
            milli=np.array([s[1] for s, _ in kept], dtype=np.int64),
            count=np.array([s[2] for s, _ in kept], dtype=np.int64),
            models=tuple(s[3] for s, _ in kept),
            weight=np.array([n / total for _, n in kept], dtype=np.float64),
        )


def fragmentation(
    cpu_left: Ints, gpu_left: Ints, access: npt.NDArray[np.bool_], w: Workload
) -> npt.NDArray[np.float64]:
    """Each state's expected fragmentation (GPU milli) for the workload: ``cpu_left`` (K),
    ``gpu_left`` (K × G), ``access`` (K × T: the state's host has a model type ``t`` may
    use). Memory is not part of it (as in the paper)."""
    idle = gpu_left.sum(axis=1)  # K
    shares, of_type = np.unique(w.milli, return_inverse=True)  # the few distinct shares
    left = gpu_left[:, None, :]  # K × 1 × G
    share = shares[None, :, None]  # 1 × S × 1
    usable = (left >= np.maximum(share, 1)).sum(axis=2)[:, of_type]  # K × T: GPUs holding t's
    fits = (cpu_left[:, None] >= w.cpu[None, :]) & access & (usable >= w.count[None, :])
    fits &= w.milli[None, :] > 0  # a device asking no GPU uses none of them
    below = (left * (left < share)).sum(axis=2)[:, of_type]  # K × T: idle on GPUs too full
    frag = np.where(fits, below, idle[:, None])
    return np.asarray(frag @ w.weight, dtype=np.float64)


class Fgd:
    """Fragmentation Gradient Descent: each device where it adds the least fragmentation;
    among the placements that add as little, the one leaving the least idle GPU on its host
    (packing: empty hosts stay empty for the devices that need whole ones), then the host
    named first. Each host's fragmentation is kept between calls and computed again only for
    the hosts that changed."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self._access: npt.NDArray[np.bool_] | None = None
        self._seen: tuple[Cluster, Ints, Ints] | None = None
        self._frag: npt.NDArray[np.float64] = np.zeros(0)

    def _before(self, cluster: Cluster) -> npt.NDArray[np.float64]:
        """Every host's fragmentation now."""
        if self._access is None or self._seen is None or self._seen[0] is not cluster:
            self._access = np.stack(
                [cluster.model_ok(m) for m in self.workload.models], axis=1
            ).reshape(len(cluster.hosts), len(self.workload.models))
            changed = np.arange(len(cluster.hosts))
            self._frag = np.zeros(len(cluster.hosts))
        else:
            _, cpu, gpus = self._seen
            changed = np.flatnonzero(
                (cpu != cluster.cpu_left) | (gpus != cluster.gpu_left).any(axis=1)
            )
        if len(changed):
            self._frag[changed] = fragmentation(
                cluster.cpu_left[changed],
                cluster.gpu_left[changed],
                self._access[changed],
                self.workload,
            )
        self._seen = (cluster, cluster.cpu_left.copy(), cluster.gpu_left.copy())
        return self._frag

    def __call__(self, cluster: Cluster, d: GpuDevice) -> Placement | None:
        fits = np.flatnonzero(cluster.feasible(d))
        if not len(fits):
            return None
        before = self._before(cluster)
        assert self._access is not None
        hosts, cols, after_gpus = _candidates(d, fits, cluster.gpu_left[fits])
        after = fragmentation(
            cluster.cpu_left[hosts] - d.cpu_milli, after_gpus, self._access[hosts], self.workload
        )
        added = after - before[hosts]
        least = np.flatnonzero(added <= added.min() + 1e-6)
        best = int(least[np.argmin(after_gpus[least].sum(axis=1))])
        host, col = int(hosts[best]), int(cols[best])
        gpus = ((col, d.gpu_milli),) if col >= 0 else cluster.gpus_for(host, d)
        return Placement(host, gpus)


def _candidates(d: GpuDevice, fits: Ints, gpus: Ints) -> tuple[Ints, Ints, Ints]:
    """Every way to place ``d`` on the fitting hosts: its host, the GPU a share goes on (-1:
    none, or whole GPUs: the first free ones), and the host's GPUs after it. A share is tried
    on each GPU that holds it, once per amount left (GPUs with as much left give the same
    host afterwards)."""
    if d.num_gpu == 0:
        return fits, np.full(len(fits), -1), gpus
    if d.gpu_milli >= FULL:
        free = gpus == FULL
        taken = free & (np.cumsum(free, axis=1) <= d.num_gpu)
        return fits, np.full(len(fits), -1), gpus - FULL * taken
    rows, cols = np.nonzero(gpus >= d.gpu_milli)
    _, first = np.unique(np.stack([rows, gpus[rows, cols]]), axis=1, return_index=True)
    first.sort()
    rows, cols = rows[first], cols[first]
    after = gpus[rows].copy()
    after[np.arange(len(rows)), cols] -= d.gpu_milli
    return fits[rows], cols, after
