"""Resource vectors (cpu, memory, storage) and device requirements, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field

from scheduler.domain import limits


@dataclass(frozen=True, slots=True)
class Resources:
    """An amount of compute a device has or a lease consumes."""

    cpu_cores: float
    memory_mb: int
    storage_mb: int

    def __str__(self) -> str:
        return f"{self.cpu_cores:g} cores, {self.memory_mb} MB memory, {self.storage_mb} MB storage"

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_cores + other.cpu_cores,
            self.memory_mb + other.memory_mb,
            self.storage_mb + other.storage_mb,
        )

    def fits_within(self, limit: Resources) -> bool:
        return (
            self.cpu_cores <= limit.cpu_cores + 1e-9
            and self.memory_mb <= limit.memory_mb
            and self.storage_mb <= limit.storage_mb
        )


ZERO = Resources(0.0, 0, 0)


@dataclass(frozen=True, slots=True)
class Toleration:
    """Allows placement on nodes carrying a taint with this key (and value, if given)."""

    key: str
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Taint:
    """A node taint: devices on the node are skipped unless the request tolerates it."""

    key: str
    value: str = ""
    effect: str = "NoSchedule"

    def is_tolerated_by(self, tolerations: tuple[Toleration, ...]) -> bool:
        if self.effect == "PreferNoSchedule":
            return True
        return any(t.key == self.key and t.value in (None, self.value) for t in tolerations)


@dataclass(frozen=True, slots=True)
class DeviceRequirements:
    """What a request asks of a device: minimum resources, Android version and labels."""

    min_cpu: float = 0.0
    min_memory_mb: int = 0
    min_storage_mb: int = 0
    android_version: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()

    @property
    def minimum(self) -> Resources:
        return Resources(self.min_cpu, self.min_memory_mb, self.min_storage_mb)

    def out_of_bounds(self) -> str | None:
        """Why these requirements are beyond what any fleet can hold (a stored request that
        slipped past the API's bounds), or ``None``."""
        for name, value, maximum in (
            ("minCpu", self.min_cpu, limits.MAX_DEVICE_CPU_CORES),
            ("minMemory", self.min_memory_mb, limits.MAX_DEVICE_MEMORY_MB),
            ("minStorage", self.min_storage_mb, limits.MAX_DEVICE_STORAGE_MB),
        ):
            problem = limits.number_problem(name, value, maximum)
            if problem:
                return problem
        if self.android_version is not None and (
            len(self.android_version) > limits.MAX_ANDROID_VERSION
            or limits.text_problem(self.android_version)
        ):
            return "androidVersion is not a version"
        texts = [t.key for t in self.tolerations] + [t.value or "" for t in self.tolerations]
        if any(limits.text_problem(t) for t in texts):
            return "tolerations must not contain NUL characters"
        return limits.labels_problem(self.labels)

    def describe(self) -> str:
        """Say in words what is asked, for explanations and error details."""
        parts = []
        if self.min_cpu:
            parts.append(f"≥ {self.min_cpu:g} cores")
        if self.min_memory_mb:
            parts.append(f"≥ {self.min_memory_mb} MB memory")
        if self.min_storage_mb:
            parts.append(f"≥ {self.min_storage_mb} MB storage")
        if self.android_version:
            parts.append(f"Android {self.android_version}")
        parts.extend(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return ", ".join(parts) or "any device"
