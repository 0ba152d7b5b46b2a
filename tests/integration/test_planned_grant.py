"""A plan's device is claimed without a read of the fleet, but only while it still matches:
a device whose node left service since the plan is passed over for the best fit."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.domain.resources import DeviceRequirements
from scheduler.services.command_path import Unit, run_unit
from scheduler.services.commands import PendingLease
from scheduler.services.leases import place_lease
from tests.builders import auth, new_spread_pool, new_tenant, settle

pytestmark = pytest.mark.integration


async def _place(
    services: Services, tenant_id: str, label: dict[str, str], preferred: list[uuid.UUID]
) -> uuid.UUID:
    now = services.clock()
    lease = PendingLease(
        uuid.uuid4(), uuid.UUID(tenant_id), "planner", now, now + timedelta(minutes=5)
    )

    async def place(unit: Unit) -> uuid.UUID:
        grant = await place_lease(unit, lease, DeviceRequirements(labels=label), preferred)
        return grant.device.id

    return await run_unit(
        services.uow, place, now=now, lifecycle=services.lifecycle, queue=services.queue
    )


async def test_a_plans_device_is_taken_while_it_matches_and_passed_over_once_it_does_not(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    first, second = await new_spread_pool(client, admin_token, nodes=2, devices_per_node=2)
    tenant = await new_tenant(client, admin_token)
    await settle(services)
    planned = uuid.UUID(first.devices[1]["id"])

    assert await _place(services, tenant["id"], first.label, [planned]) == planned

    other = uuid.UUID(first.devices[0]["id"])
    r = await client.post(
        f"/scheduler/nodes/{first.node['id']}/maintenance",
        headers=auth(admin_token),
        json={"enable": True},
    )
    assert r.json()["status"] == "maintenance", r.text
    got = await _place(services, tenant["id"], first.label, [other])
    assert got != other
    assert str(got) in {d["id"] for d in second.devices}
