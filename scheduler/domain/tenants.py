"""Tenants and their flat quota: what they may hold at once, and what they hold now."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from scheduler.domain.rate_limits import RateLimit
from scheduler.domain.resources import Resources


@dataclass(frozen=True, slots=True)
class Tenant:
    id: uuid.UUID
    name: str
    tier: str
    max_devices: int
    quota: Resources
    used_devices: int
    used: Resources
    created_at: datetime
    max_extensions: int = 3
    max_lease_minutes: int = 2880
    rate_limit: RateLimit | None = None

    @property
    def devices_left(self) -> int:
        return max(0, self.max_devices - self.used_devices)

    @property
    def headroom(self) -> Resources:
        """The largest device the quota still admits, per resource."""
        return Resources(
            max(0.0, self.quota.cpu_cores - self.used.cpu_cores),
            max(0, self.quota.memory_mb - self.used.memory_mb),
            max(0, self.quota.storage_mb - self.used.storage_mb),
        )

    def admits(self, device: Resources) -> bool:
        return self.devices_left >= 1 and device.fits_within(self.headroom)
