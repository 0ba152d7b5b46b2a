"""The SQL unit of work frames its transactions by hand in the pipeline: an error of a
statement nobody read surfaces at the commit as what it is (a violated constraint, a refusal),
never as the "pipeline aborted" of the statements after it; nothing of the unit is kept."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from scheduler.bootstrap import Services
from scheduler.domain.errors import AlreadyExists
from tests.builders import run_sql

pytestmark = pytest.mark.integration


async def test_a_failed_statement_nobody_read_surfaces_at_the_commit_as_itself(
    services: Services,
) -> None:
    name = f"uow-{uuid.uuid4().hex[:8]}"
    insert = (
        "INSERT INTO strategies (id, name, type, weights, is_active, created_at, updated_at)"
        " VALUES (%(id)s, %(name)s, 'spread', '{200,0,800}', false, now(), now())"
    )
    await run_sql(services, insert, {"id": uuid.uuid4(), "name": name})

    for pause in (0.0, 0.05):  # the error read at the commit, or already in the socket
        uow = services.uow()
        with pytest.raises(AlreadyExists):
            async with uow:
                await uow.strategies._send(insert, {"id": uuid.uuid4(), "name": name})  # type: ignore[attr-defined]
                await uow.strategies._send("SELECT 1")  # type: ignore[attr-defined]
                await asyncio.sleep(pause)
                await uow.commit()

    rows = await run_sql(
        services, "SELECT count(*) AS n FROM strategies WHERE name = %(name)s", {"name": name}
    )
    assert rows[0]["n"] == 1
    async with services.uow() as uow:  # the pooled connection is clean for the next unit
        assert await uow.strategies.named(name) is not None
