"""The raw PostgreSQL floor: the least an allocate+release can cost on this server.

No HTTP, no app, no pool: one psycopg 3 async connection per client, kept in pipeline mode,
so each transaction is one round trip. Allocate claims an available device of the floor's
node with ``FOR UPDATE SKIP LOCKED``, marks it allocated and inserts the lease, in one
statement, then commits; release ends the lease, frees the device and commits. With
``charge_tenant`` both also update the tenant's row (as the service's quota accounting
does), which serializes every transaction of that tenant on the row lock.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench.request_path.fleet import Pool
from bench.request_path.pairs import PairFailed

LEASE = timedelta(minutes=30)

CLAIM = """
WITH claimed AS (
    SELECT id FROM devices
    WHERE node_id = %(node_id)s AND status = 'available'
    LIMIT 1 FOR UPDATE SKIP LOCKED
), taken AS (
    UPDATE devices d SET status = 'allocated', status_changed_at = %(at)s
    FROM claimed c WHERE d.id = c.id
    RETURNING d.id, d.cpu_cores, d.memory_mb, d.storage_mb
)
INSERT INTO allocations (id, device_id, tenant_id, user_id, status, allocated_at, expires_at,
    cpu_cores, memory_mb, storage_mb)
SELECT %(id)s, t.id, %(tenant_id)s, %(user_id)s, 'active', %(at)s, %(expires_at)s,
    t.cpu_cores, t.memory_mb, t.storage_mb
FROM taken t
RETURNING device_id
"""
END_LEASE = (
    "UPDATE allocations SET status = 'released', ended_at = %(at)s, end_reason = 'released'"
    " WHERE id = %(id)s AND status = 'active'"
)
FREE_DEVICE = (
    "UPDATE devices SET status = 'available', status_changed_at = %(at)s"
    " WHERE id = %(device_id)s AND status = 'allocated'"
)
CHARGE_TENANT = "UPDATE tenants SET used_devices = used_devices + 1 WHERE id = %(tenant_id)s"
REFUND_TENANT = "UPDATE tenants SET used_devices = used_devices - 1 WHERE id = %(tenant_id)s"


class FloorWorker:
    """One client of the floor: a connection in pipeline mode and a user of the floor tenant."""

    def __init__(
        self, connection: psycopg.AsyncConnection[Any], pool: Pool, user_id: str, charge: bool
    ) -> None:
        self._connection = connection
        self._pool = pool
        self._user_id = user_id
        self._charge = charge

    async def pair(self) -> tuple[float, float]:
        allocation_id = uuid.uuid4()
        started = time.perf_counter()
        device_id = await self._allocate(allocation_id)
        allocated = time.perf_counter()
        await self._release(allocation_id, device_id)
        return allocated - started, time.perf_counter() - started

    async def _allocate(self, allocation_id: uuid.UUID) -> uuid.UUID:
        at = datetime.now(UTC)
        params = {
            "id": allocation_id,
            "node_id": self._pool.node_id,
            "tenant_id": self._pool.tenant_id,
            "user_id": self._user_id,
            "at": at,
            "expires_at": at + LEASE,
        }
        async with self._transaction("allocate"):
            if self._charge:
                await self._connection.execute(CHARGE_TENANT, params)
            cursor = await self._connection.execute(CLAIM, params)
            await self._connection.commit()
            row = await cursor.fetchone()
        if row is None:
            raise PairFailed("allocate: no available floor device")
        return uuid.UUID(str(row[0]))

    async def _release(self, allocation_id: uuid.UUID, device_id: uuid.UUID) -> None:
        params = {
            "id": allocation_id,
            "device_id": device_id,
            "tenant_id": self._pool.tenant_id,
            "at": datetime.now(UTC),
        }
        async with self._transaction("release"):
            await self._connection.execute(END_LEASE, params)
            await self._connection.execute(FREE_DEVICE, params)
            if self._charge:
                await self._connection.execute(REFUND_TENANT, params)
            await self._connection.commit()

    @contextlib.asynccontextmanager
    async def _transaction(self, what: str) -> AsyncIterator[None]:
        try:
            yield
        except psycopg.Error as error:
            await self._connection.rollback()
            raise PairFailed(f"{what}: {error}") from error


@contextlib.asynccontextmanager
async def floor_workers(
    database_url: str, pool: Pool, count: int, *, charge_tenant: bool
) -> AsyncIterator[list[FloorWorker]]:
    """``count`` workers, each on its own connection (in pipeline mode until the end)."""
    async with contextlib.AsyncExitStack() as stack:
        workers = []
        for index in range(count):
            connection = await psycopg.AsyncConnection.connect(database_url, autocommit=False)
            await stack.enter_async_context(connection)
            await stack.enter_async_context(connection.pipeline())
            workers.append(FloorWorker(connection, pool, f"floor-user-{index}", charge_tenant))
        yield workers
