"""The candidate classes this process read lately, kept a moment for the next requests alike.

A read of the best candidate classes costs what the fleet is large (about 60 ms at 100,000
devices; a fleet of 400 reads in 2), while requests alike (same requirements) read the same
classes again and again. A process keeps each read ``ttl`` seconds: the next requests alike
rank the kept classes instead — without reading anything, not even their tenant — minus the
devices this process has granted since the read. The kept classes are a hint, never a
decision: a grant from them checks every device again in its statement (available,
unbooked, matching, on a ready and untainted node, the strategy still the one they were
ranked by, the tenant's quota), and a placement that finds nothing in them, or whose grant
is refused, reads the fleet afresh. What other processes grant meanwhile is learnt at the
next read, within ``ttl``.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from scheduler.adapters.sql_base import Row
from scheduler.domain.fleet import Device
from scheduler.domain.resources import DeviceRequirements

#: Requirements kept at most (the least recently read go first).
MAX_KEPT = 256


@dataclass(frozen=True)
class KeptRead:
    read_at: float  # when the read was sent: what changed after may be missing from it
    strategy: str
    rows: list[Row]
    devices: dict[uuid.UUID, Device]


class RecentCandidates:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._kept: dict[str, KeptRead] = {}
        self._taken: dict[uuid.UUID, float] = {}

    @staticmethod
    def key(requirements: DeviceRequirements) -> str:
        return json.dumps(asdict(requirements), sort_keys=True, default=str)

    def now(self) -> float:
        return self._clock()

    def get(self, requirements: DeviceRequirements) -> KeptRead | None:
        """The kept read for ``requirements`` if young enough (ranked by the strategy it
        names), without the devices granted since it was sent: each class's free count
        lowered as much, and its node's occupancy raised."""
        kept = self._kept.get(self.key(requirements))
        if kept is None or self._clock() - kept.read_at >= self._ttl:
            return None
        gone = {d for d, at in self._taken.items() if at >= kept.read_at}
        # a class's devices are alike: each request gets them in an order of its own, so
        # that concurrent requests of this process send their grants for different ones
        left = []
        for row in kept.rows:
            ids = [d for d in row["ids"] if d not in gone]
            left.append(random.sample(ids, len(ids)))
        gone_on_node: Counter[uuid.UUID] = Counter()
        for row, ids in zip(kept.rows, left, strict=True):
            gone_on_node[row["node_id"]] += len(row["ids"]) - len(ids)
        rows = [
            {
                **row,
                "ids": ids,
                "free": row["free"] - (len(row["ids"]) - len(ids)),
                "occupancy": row["occupancy"]
                + gone_on_node[row["node_id"]] / max(row["max_devices"], 1),
            }
            for row, ids in zip(kept.rows, left, strict=True)
            if ids
        ]
        return KeptRead(kept.read_at, kept.strategy, rows, kept.devices)

    def keep(self, requirements: DeviceRequirements, read: KeptRead) -> None:
        key = self.key(requirements)
        self._kept.pop(key, None)
        self._kept[key] = read
        while len(self._kept) > MAX_KEPT:
            del self._kept[next(iter(self._kept))]

    def taken(self, device_ids: Iterable[uuid.UUID]) -> None:
        """``device_ids`` were (or may have been) granted by this process just now."""
        now = self._clock()
        for device_id in device_ids:
            self._taken[device_id] = now
        if len(self._taken) > 4 * MAX_KEPT:
            self._taken = {d: at for d, at in self._taken.items() if now - at < self._ttl}
