"""The wire counter of the request-path bench (``bench/request_path/wire.py``): the message
splitter on its own, then the proxy in front of the real PostgreSQL with psycopg as client
(skipped when no server answers at ``PHONEFLEET_TEST_DATABASE_URL``)."""

from __future__ import annotations

import os
import random
import struct
from collections.abc import AsyncIterator

import psycopg
import pytest

from bench.request_path.wire import MessageSplitter, WireCounter, WireCounts

DATABASE_URL = os.environ.get(
    "PHONEFLEET_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
).replace("postgresql+psycopg://", "postgresql://")


def message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", 4 + len(body)) + body


def test_messages_are_found_however_the_stream_is_cut() -> None:
    stream = b"".join(
        [
            message(b"P", b"\x00SELECT 1\x00\x00\x00"),
            message(b"B", b"\x00" * 10),
            message(b"E", b"\x00\x00\x00\x00\x00"),
            message(b"S", b""),
            message(b"Q", b"SELECT " + b"x" * 100_000 + b"\x00"),
        ]
    )
    expected = list(b"PBESQ")
    rng = random.Random(7)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(stream)), 12))
        splitter = MessageSplitter()
        found = []
        for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            found += splitter.feed(stream[start:end])
        assert found == expected
    byte_by_byte = MessageSplitter()
    found = [k for i in range(len(stream)) for k in byte_by_byte.feed(stream[i : i + 1])]
    assert found == expected


@pytest.fixture
async def counter() -> AsyncIterator[WireCounter]:
    try:
        probe = await psycopg.AsyncConnection.connect(DATABASE_URL, connect_timeout=3)
    except psycopg.OperationalError:
        pytest.skip(f"no PostgreSQL at {DATABASE_URL}")
    await probe.close()
    async with WireCounter.in_front_of(DATABASE_URL) as proxy:
        yield proxy


async def connect(counter: WireCounter, *, autocommit: bool) -> psycopg.AsyncConnection:
    """A connection through the proxy, with psycopg's defaults (``sslmode=prefer``)."""
    return await psycopg.AsyncConnection.connect(counter.url(DATABASE_URL), autocommit=autocommit)


async def test_startup_and_authentication_are_not_counted(counter: WireCounter) -> None:
    async with await connect(counter, autocommit=True):
        assert counter.snapshot() == WireCounts(connects=1)


async def test_a_select_in_autocommit_is_one_statement_and_one_round_trip(
    counter: WireCounter,
) -> None:
    async with await connect(counter, autocommit=True) as conn:
        counter.reset()
        await conn.execute("SELECT 1")  # a Parse/Bind/Describe/Execute/Sync in one flight
        assert counter.snapshot() == WireCounts(statements=1, round_trips=1, connections=1)


async def test_a_pipeline_sent_at_once_and_read_once_is_one_round_trip(
    counter: WireCounter,
) -> None:
    """BEGIN, three statements and COMMIT queued in pipeline mode; leaving the pipeline
    sends them with one Sync and reads every answer: five statements, one round trip (the
    server sends nothing before the Sync)."""
    async with await connect(counter, autocommit=True) as conn:
        counter.reset()
        async with conn.pipeline():
            await conn.execute("BEGIN")
            for value in range(3):
                await conn.execute("SELECT %s::int", (value,))
            await conn.execute("COMMIT")
        assert counter.snapshot() == WireCounts(statements=5, round_trips=1, connections=1)


async def test_a_psycopg_transaction_in_a_pipeline_costs_three_round_trips(
    counter: WireCounter,
) -> None:
    """What psycopg itself does with a transaction in pipeline mode (as the service's unit
    of work runs one): the first statement's implicit BEGIN goes with a Sync of its own and
    is waited for; ``commit()`` sends the statements, COMMIT and a Sync and waits for them;
    leaving the pipeline sends one more Sync and waits for its ReadyForQuery."""
    async with await connect(counter, autocommit=False) as conn:
        counter.reset()
        async with conn.pipeline():
            for value in range(3):
                await conn.execute("SELECT %s::int", (value,))
            assert counter.snapshot().round_trips == 1  # BEGIN alone; the SELECTs wait
            await conn.commit()
            assert counter.snapshot() == WireCounts(statements=5, round_trips=2, connections=1)
        assert counter.snapshot() == WireCounts(statements=5, round_trips=3, connections=1)


async def test_a_prepared_statement_still_counts_each_execute(counter: WireCounter) -> None:
    """psycopg prepares a query on its fifth use (outside a pipeline, a Parse and Sync of
    its own: one more round trip); later uses send Bind/Execute without Parse."""
    async with await connect(counter, autocommit=True) as conn:
        counter.reset()
        for value in range(8):
            await conn.execute("SELECT %s::int", (value,))
        assert counter.snapshot() == WireCounts(statements=8, round_trips=9, connections=1)


async def test_a_notification_is_no_round_trip_of_the_listener(counter: WireCounter) -> None:
    async with (
        await connect(counter, autocommit=True) as listener,
        await connect(counter, autocommit=True) as notifier,
    ):
        await listener.execute("LISTEN wire_counter_test")
        counter.reset()
        await notifier.execute("NOTIFY wire_counter_test, 'hello'")
        heard = [n.payload async for n in listener.notifies(timeout=5.0, stop_after=1)]
        assert heard == ["hello"]
        assert counter.snapshot() == WireCounts(statements=1, round_trips=1, connections=1)
