"""The SQL unit of work: one connection and transaction, with every repository bound to it."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from scheduler.adapters.db_errors import translate_db_errors
from scheduler.adapters.sql_fleet import SqlDeviceRepository, SqlNodeRepository
from scheduler.adapters.sql_jobs import SqlJobLedger, SqlOutboxRepository
from scheduler.adapters.sql_leases import SqlAllocationRepository, SqlUsageRepository
from scheduler.adapters.sql_tenancy import (
    SqlIdempotencyRepository,
    SqlTenantRepository,
    SqlTokenRepository,
)


class SqlUnitOfWork:
    """``async with uow:`` begins a transaction; ``commit()`` ends it; leaving rolls back."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        with translate_db_errors():
            connection = await self._engine.connect()
            await connection.begin()
        self._connection = connection
        self.tenants = SqlTenantRepository(connection)
        self.tokens = SqlTokenRepository(connection)
        self.nodes = SqlNodeRepository(connection)
        self.devices = SqlDeviceRepository(connection)
        self.allocations = SqlAllocationRepository(connection)
        self.usage = SqlUsageRepository(connection)
        self.outbox = SqlOutboxRepository(connection)
        self.idempotency = SqlIdempotencyRepository(connection)
        self.jobs = SqlJobLedger(connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if connection.in_transaction():
                await connection.rollback()
        finally:
            await connection.close()

    async def commit(self) -> None:
        assert self._connection is not None, "commit() outside 'async with'"
        with translate_db_errors():
            await self._connection.commit()
