"""A node agent batches its work per node: calls arriving while a batch runs go together as
the next one (one read, one driver call, one mark-ready transaction, one queue wake), each
caller still learns how many of its devices became available, and a stale reset never
touches a device that was since reset and leased again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Sequence
from typing import Any

import httpx
import pytest

from scheduler.bootstrap import Services
from scheduler.domain.fleet import Device
from scheduler.services.node_agent import NodeAgent
from scheduler.services.ports import UnitOfWork
from tests.builders import auth, in_pool, new_pool, new_tenant, new_token, run_sql, settle

pytestmark = pytest.mark.integration


class GatedDriver:
    """Records each driver call; while ``gate`` is clear, a call blocks on it."""

    def __init__(self, *, fail_first: bool = False) -> None:
        self.calls: list[tuple[str, list[uuid.UUID]]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self._fail_first = fail_first

    async def _call(self, kind: str, devices: Sequence[Device]) -> None:
        self.calls.append((kind, [d.id for d in devices]))
        await self.gate.wait()
        if self._fail_first and len(self.calls) == 1:
            raise RuntimeError("the phone did not answer")

    async def provision(self, devices: Sequence[Device]) -> None:
        await self._call("provision", devices)

    async def reset(self, devices: Sequence[Device]) -> set[uuid.UUID]:
        await self._call("reset", devices)
        return set()

    async def entered(self, count: int) -> None:
        """Wait until ``count`` driver calls have started."""
        for _ in range(500):
            if len(self.calls) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"expected {count} driver calls, have {self.calls}")


class RecordingQueue:
    """A queue dispatcher that only records its wakes."""

    def __init__(self) -> None:
        self.wakes: list[list[uuid.UUID]] = []

    def wake(
        self,
        new_entries: bool = False,
        *,
        tenants: Collection[uuid.UUID] = (),
        devices: Collection[uuid.UUID] = (),
    ) -> None:
        self.wakes.append(list(devices))

    async def drain(self, max_grants: int | None = None) -> int:
        return 0


class Harness:
    """A ``NodeAgent`` over the test database with a gated driver, a recording queue and a
    count of the units of work (transactions) it opened."""

    def __init__(self, services: Services, *, fail_first: bool = False) -> None:
        self.services = services
        self.driver = GatedDriver(fail_first=fail_first)
        self.queue = RecordingQueue()
        self.transactions = 0
        self.agent = NodeAgent(self._uow, self.driver, services.clock, self.queue)

    def _uow(self) -> UnitOfWork:
        self.transactions += 1
        return self.services.uow()

    async def statuses(self, device_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        rows = await run_sql(
            self.services,
            "SELECT id, status FROM devices WHERE id = ANY(%(ids)s::uuid[])",
            {"ids": [str(d) for d in device_ids]},
        )
        return {r["id"]: r["status"] for r in rows}


async def set_status(services: Services, device_ids: Sequence[uuid.UUID], status: str) -> None:
    await run_sql(
        services,
        "UPDATE devices SET status = %(status)s WHERE id = ANY(%(ids)s::uuid[])",
        {"status": status, "ids": [str(d) for d in device_ids]},
    )


async def pool_devices(
    client: httpx.AsyncClient, admin: str, count: int
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    pool = await new_pool(client, admin, devices=count)
    return uuid.UUID(pool.node["id"]), [uuid.UUID(d["id"]) for d in pool.devices]


async def test_resets_asked_while_a_batch_runs_go_together_as_the_next_batch(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    node, devices = await pool_devices(client, admin_token, 6)
    await set_status(services, devices, "resetting")
    h = Harness(services)
    h.driver.gate.clear()

    first = asyncio.create_task(h.agent.reset(node, devices[:1]))
    await h.driver.entered(1)  # a lone request on an idle node starts at once
    later = [
        asyncio.create_task(h.agent.reset(node, devices[1:3])),
        asyncio.create_task(h.agent.reset(node, devices[3:4])),
        # devices[0] is being reset by the running batch: it is left out, not reset twice
        asyncio.create_task(h.agent.reset(node, [devices[0], *devices[4:]])),
        asyncio.create_task(h.agent.reset(node, devices[4:5])),  # asked twice: reset once
    ]
    await asyncio.sleep(0.05)
    assert len(h.driver.calls) == 1  # the later calls wait for the running batch
    h.driver.gate.set()

    assert await first == 1
    assert [await t for t in later] == [2, 1, 2, 1]
    assert [kind for kind, _ in h.driver.calls] == ["reset", "reset"]
    assert h.driver.calls[0][1] == devices[:1]
    assert sorted(h.driver.calls[1][1]) == sorted(devices[1:])
    assert h.transactions == 4  # a read and a mark-ready per batch
    assert [sorted(w) for w in h.queue.wakes] == [devices[:1], sorted(devices[1:])]
    assert set((await h.statuses(devices)).values()) == {"available"}


async def test_provisioning_calls_of_one_moment_go_as_one_batch(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    node, devices = await pool_devices(client, admin_token, 3)
    await set_status(services, devices, "provisioning")
    h = Harness(services)

    counts = await asyncio.gather(*(h.agent.provision(node, [d]) for d in devices))

    assert counts == [1, 1, 1]
    assert [kind for kind, _ in h.driver.calls] == ["provision"]
    assert sorted(h.driver.calls[0][1]) == sorted(devices)
    assert h.transactions == 2
    assert h.queue.wakes == [[]]  # new devices wake anyone
    assert set((await h.statuses(devices)).values()) == {"available"}


async def test_a_stale_reset_never_touches_a_device_since_reset_and_leased_again(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pool = await new_pool(client, admin_token, devices=3)
    node = uuid.UUID(pool.node["id"])
    user = await new_token(
        client, admin_token, (await new_tenant(client, admin_token))["id"], "stale"
    )
    grant = await client.post("/scheduler/devices/allocate", headers=auth(user), json=in_pool(pool))
    assert grant.status_code == 201, grant.text
    leased = uuid.UUID(grant.json()["device"]["id"])
    released = await client.post(
        "/scheduler/devices/release",
        headers=auth(user),
        json={"allocationId": grant.json()["allocationId"]},
    )
    assert released.status_code == 200, released.text
    await settle(services)  # the reset that release asked for is done
    # the device is leased again (the pool's label keeps others' leases off it)
    others = [uuid.UUID(d["id"]) for d in pool.devices if uuid.UUID(d["id"]) != leased]
    await set_status(services, others, "maintenance")
    again = await client.post("/scheduler/devices/allocate", headers=auth(user), json=in_pool(pool))
    assert again.status_code == 201, again.text
    assert uuid.UUID(again.json()["device"]["id"]) == leased
    idle, resetting = others
    await set_status(services, [idle], "available")
    await set_status(services, [resetting], "resetting")
    h = Harness(services)

    # the stale reset message of the first lease arrives, with others of the node
    assert await h.agent.reset(node, [leased, idle, resetting]) == 1
    assert await h.agent.reset(node, [leased, idle]) == 0

    assert h.driver.calls == [("reset", [resetting])]
    assert await h.statuses([leased, idle, resetting]) == {
        leased: "allocated",
        idle: "available",
        resetting: "available",
    }
    assert h.transactions == 3  # the read of the stale-only batch is all it costs


async def test_a_failed_batch_fails_its_callers_and_leaves_its_devices_for_the_reconcile(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    node, devices = await pool_devices(client, admin_token, 4)
    await set_status(services, devices, "resetting")
    h = Harness(services, fail_first=True)
    h.driver.gate.clear()

    failing = asyncio.create_task(h.agent.reset(node, devices[:1]))
    await h.driver.entered(1)
    queued = asyncio.create_task(h.agent.reset(node, devices[1:]))
    await asyncio.sleep(0.05)
    h.driver.gate.set()

    with pytest.raises(RuntimeError):
        await failing
    assert await queued == 3  # the next batch still goes
    assert (await h.statuses(devices))[devices[0]] == "resetting"  # not lost

    assert await h.agent.reconcile() == 1

    assert set((await h.statuses(devices)).values()) == {"available"}
    assert h.driver.calls[-1] == ("reset", devices[:1])


async def test_a_batch_of_callers_all_fail_together(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    node, devices = await pool_devices(client, admin_token, 3)
    await set_status(services, devices, "resetting")
    h = Harness(services, fail_first=True)

    results: list[Any] = await asyncio.gather(
        *(h.agent.reset(node, [d]) for d in devices), return_exceptions=True
    )

    assert all(isinstance(r, RuntimeError) for r in results), results
    assert len(h.driver.calls) == 1
    assert set((await h.statuses(devices)).values()) == {"resetting"}
    assert await h.agent.reconcile() == 3


async def test_nodes_are_batched_apart_and_one_slow_node_holds_up_no_other(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    node_a, devices_a = await pool_devices(client, admin_token, 2)
    node_b, devices_b = await pool_devices(client, admin_token, 2)
    await set_status(services, devices_a + devices_b, "resetting")
    h = Harness(services)
    h.driver.gate.clear()

    tasks = [
        asyncio.create_task(h.agent.reset(node_a, devices_a)),
        asyncio.create_task(h.agent.reset(node_b, devices_b)),
    ]
    await h.driver.entered(2)  # both nodes' batches run at once
    h.driver.gate.set()

    assert [await t for t in tasks] == [2, 2]
    assert sorted(sorted(ids) for _, ids in h.driver.calls) == sorted(
        [sorted(devices_a), sorted(devices_b)]
    )


async def test_a_reconcile_during_a_batch_leaves_out_what_the_batch_is_driving(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    node, devices = await pool_devices(client, admin_token, 3)
    await set_status(services, devices, "resetting")
    h = Harness(services)
    h.driver.gate.clear()

    running = asyncio.create_task(h.agent.reset(node, devices[:1]))
    await h.driver.entered(1)
    reconciling = asyncio.create_task(h.agent.reconcile())
    await asyncio.sleep(0.1)
    h.driver.gate.set()

    assert await running == 1
    assert await reconciling == 2
    assert [sorted(ids) for _, ids in h.driver.calls] == [devices[:1], sorted(devices[1:])]
    assert set((await h.statuses(devices)).values()) == {"available"}
