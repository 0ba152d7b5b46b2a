"""A device driver that simulates phones: provisioning and factory resets take set times."""

from __future__ import annotations

import asyncio
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

    async def provision(self, devices: Sequence[Device]) -> None:
        await asyncio.sleep(self._provision_seconds)
        self.provisions += len(devices)

    async def reset(self, devices: Sequence[Device]) -> None:
        await asyncio.sleep(self._reset_seconds)
        self.resets += len(devices)
