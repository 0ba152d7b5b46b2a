"""The placement problem as plain arrays: candidate devices and what a request needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Column order of every resource matrix.
RESOURCE_COLUMNS = ("cpu_cores", "memory_mb", "storage_mb")


@dataclass(frozen=True)
class CandidateDevices:
    """Devices that match a request's selectors and are free now.

    Attributes:
        ids: device ids, one per row.
        capacity: ``(n, 3)`` resources of each device, in ``RESOURCE_COLUMNS`` order.
        node_occupancy: ``(n,)`` fraction of the device's node already leased (0 empty, 1 full).
    """

    ids: tuple[object, ...]
    capacity: FloatArray
    node_occupancy: FloatArray

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_rows(cls, rows: list[tuple[object, float, float, float, float]]) -> CandidateDevices:
        """Build from ``(id, cpu, memory, storage, node_occupancy)`` rows."""
        if not rows:
            return cls((), np.zeros((0, 3)), np.zeros(0))
        table = np.asarray([r[1:] for r in rows], dtype=np.float64)
        return cls(tuple(r[0] for r in rows), table[:, :3], table[:, 3])


def as_vector(resources: object) -> FloatArray:
    """A ``Resources``-like value (``cpu_cores``, ``memory_mb``, ``storage_mb``) as a row."""
    return np.asarray([float(getattr(resources, c)) for c in RESOURCE_COLUMNS], dtype=np.float64)
