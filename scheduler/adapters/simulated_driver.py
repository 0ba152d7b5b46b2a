"""A device driver that simulates phones: provisioning and factory resets take set times,
and any phone can be made to fail (its resets fail until it is healed)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from scheduler.domain.fleet import Device


class SimulatedDeviceDriver:
    """Stands in for a node agent that boots and wipes real phones. The ADB endpoint of each
    device is fixed at registration; this driver only spends the configured time."""

    def __init__(self, provision_seconds: float, reset_seconds: float) -> None:
        self._provision_seconds = provision_seconds
        self._reset_seconds = reset_seconds
        self.resets = 0
        self.provisions = 0
        #: Devices whose resets fail (``break_device``), until ``heal_device``.
        self.broken: set[uuid.UUID] = set()

    async def provision(self, devices: Sequence[Device]) -> None:
        await asyncio.sleep(self._provision_seconds)
        self.provisions += len(devices)

    async def reset(self, devices: Sequence[Device]) -> set[uuid.UUID]:
        await asyncio.sleep(self._reset_seconds)
        failed = {d.id for d in devices} & self.broken
        self.resets += len(devices) - len(failed)
        return failed

    def break_device(self, device_id: uuid.UUID) -> None:
        self.broken.add(device_id)

    def heal_device(self, device_id: uuid.UUID) -> None:
        self.broken.discard(device_id)
