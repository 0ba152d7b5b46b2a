"""Statements and round trips of PostgreSQL clients, counted on the wire.

``WireCounter`` is a TCP proxy on the loopback in front of a PostgreSQL server: clients
connect to it instead of the server, and it reads the frontend/backend protocol as it passes
the bytes on unchanged. After a connection's startup (its startup packet, authentication and
everything up to the server's first ReadyForQuery, none of which is counted), it counts, over
every connection together until ``reset()``:

* ``statements``: the client's Execute ('E') and simple Query ('Q') messages. Transaction
  control sent as a statement counts like any other: psycopg sends ``BEGIN`` and ``COMMIT``
  as statements (in pipeline mode as Parse/Bind/Execute, else as a simple Query). A simple
  Query holding several statements counts once. Parse, Bind, Describe, Sync and Flush are no
  statements: a prepared statement (psycopg prepares a query on its fifth use on a
  connection) skips Parse and still counts once per Execute.
* ``round_trips``: on each connection, every first answer of the server after the client
  sent something (the first bytes from the server that follow bytes from the client). A
  pipeline that sends several statements and a Sync before it reads costs one; what the
  server sends unasked (a NOTIFY to a listening connection) costs none.
* ``connections``: the connections whose client sent something after its startup;
* ``connects``: the connections whose startup finished (their startups' own round trips are
  not in ``round_trips``).

The proxy refuses SSL and GSS encryption requests itself (answer 'N'), so a client goes on in
plain text, which psycopg's default ``sslmode=prefer`` accepts; a cancel request is passed on
uncounted.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
#: PostgreSQL refuses longer startup packets itself.
MAX_STARTUP_BYTES = 10_000
STATEMENT_TYPES = frozenset(b"EQ")
READY_FOR_QUERY = ord("Z")
CHUNK_BYTES = 65_536


class WireProtocolError(Exception):
    """The bytes are not the PostgreSQL protocol (the connection is dropped)."""


@dataclass(frozen=True)
class WireCounts:
    """What the clients did since the counter's last reset (see the module's docstring)."""

    statements: int = 0
    round_trips: int = 0
    connections: int = 0
    connects: int = 0


class MessageSplitter:
    """Finds the messages in one direction of a connection after its startup packet: each is
    a type byte and an int32 length counting itself and the body, however the stream is cut
    into reads."""

    def __init__(self) -> None:
        self._header = bytearray()
        self._body_left = 0

    def feed(self, data: bytes) -> list[int]:
        """The type bytes of the messages whose header ends in ``data``.

        Raises:
            WireProtocolError: a length shorter than the length field itself.
        """
        kinds: list[int] = []
        position, end = 0, len(data)
        while position < end:
            if self._body_left:
                skipped = min(self._body_left, end - position)
                self._body_left -= skipped
                position += skipped
                continue
            taken = data[position : position + 5 - len(self._header)]
            self._header += taken
            position += len(taken)
            if len(self._header) < 5:
                break
            length = int.from_bytes(self._header[1:5], "big")
            if length < 4:
                raise WireProtocolError(f"message length {length}")
            kinds.append(self._header[0])
            self._body_left = length - 4
            self._header.clear()
        return kinds


@dataclass
class _Tally:
    """The totals since the last reset, shared by every connection."""

    statements: int = 0
    round_trips: int = 0
    connects: int = 0
    speakers: set[_Link] = field(default_factory=set)  # the connections that sent

    def clear(self) -> None:
        self.statements = self.round_trips = self.connects = 0
        self.speakers.clear()

    def counts(self) -> WireCounts:
        return WireCounts(self.statements, self.round_trips, len(self.speakers), self.connects)


class _Link:
    """One proxied connection: what its two directions add to the tally."""

    def __init__(self, tally: _Tally) -> None:
        self._tally = tally
        self._from_client = MessageSplitter()
        self._from_server = MessageSplitter()
        self._started = False  # the server sent its first ReadyForQuery
        self._client_spoke = False  # since the server last sent anything

    def client_sent(self, data: bytes) -> None:
        kinds = self._from_client.feed(data)
        if not self._started:
            return
        self._tally.statements += sum(kind in STATEMENT_TYPES for kind in kinds)
        self._tally.speakers.add(self)
        self._client_spoke = True

    def server_sent(self, data: bytes) -> None:
        if self._started and self._client_spoke:
            self._tally.round_trips += 1
        self._client_spoke = False
        kinds = self._from_server.feed(data)
        if not self._started and READY_FOR_QUERY in kinds:
            self._started = True
            self._tally.connects += 1


async def _startup_packet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """The client's startup (or cancel) packet, after refusing any encryption requests.

    Raises:
        WireProtocolError: a packet too short or too long to be a startup packet.
    """
    while True:
        header = await reader.readexactly(8)
        length, code = struct.unpack("!ii", header)
        if not 8 <= length <= MAX_STARTUP_BYTES:
            raise WireProtocolError(f"startup packet of {length} bytes")
        packet = header + await reader.readexactly(length - 8)
        if code not in (SSL_REQUEST, GSSENC_REQUEST):
            return packet
        writer.write(b"N")  # not supported: the client goes on without encryption
        await writer.drain()


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Callable[[bytes], None]
) -> None:
    """Pass one direction's bytes on, each read shown to ``seen`` first, until it ends."""
    while data := await reader.read(CHUNK_BYTES):
        seen(data)
        writer.write(data)
        await writer.drain()


class WireCounter:
    """The proxy and its counts: ``async with WireCounter(host, port) as counter:`` listens
    on ``counter.port`` until the block ends; ``reset()`` then ``snapshot()`` around a piece
    of work give what that work (and anything else using the proxy meanwhile) cost."""

    def __init__(self, server_host: str, server_port: int, listen_port: int = 0) -> None:
        self._server = (server_host, server_port)
        self._listen_port = listen_port
        self._listener: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._tally = _Tally()

    @classmethod
    def in_front_of(cls, database_url: str, listen_port: int = 0) -> WireCounter:
        """A counter for the server of a ``postgresql://`` (or SQLAlchemy-style) URL.

        Raises:
            ValueError: the URL names no TCP host (a Unix socket cannot be proxied here).
        """
        parts = urlsplit(database_url)
        if not parts.hostname:
            raise ValueError(f"{database_url!r} names no host to proxy")
        return cls(parts.hostname, parts.port or 5432, listen_port)

    @property
    def port(self) -> int:
        assert self._listener is not None, "the counter is not listening"
        port: int = self._listener.sockets[0].getsockname()[1]
        return port

    def url(self, database_url: str) -> str:
        """``database_url`` with the proxy's address in place of the server's."""
        parts = urlsplit(database_url)
        user, at, _ = parts.netloc.rpartition("@")
        return parts._replace(netloc=f"{user}{at}{LOOPBACK}:{self.port}").geturl()

    def reset(self) -> None:
        """Start counting from zero."""
        self._tally.clear()

    def snapshot(self) -> WireCounts:
        """The counts since the last reset."""
        return self._tally.counts()

    async def __aenter__(self) -> Self:
        self._listener = await asyncio.start_server(self._serve, LOOPBACK, self._listen_port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop listening and drop every proxied connection."""
        if self._listener is not None:
            self._listener.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None

    async def _serve(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        # The relay is a task of its own, so that closing the counter cancels it and not the
        # task asyncio runs this in (Python 3.11 logs an error for a cancelled one).
        relay = asyncio.create_task(self._relay(client, to_client))
        self._connections.add(relay)
        try:
            await relay
        except (asyncio.CancelledError, OSError, asyncio.IncompleteReadError, WireProtocolError):
            pass  # closed by us or by either side, or not PostgreSQL: the connection ends
        finally:
            self._connections.discard(relay)
            to_client.close()

    async def _relay(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        packet = await _startup_packet(client, to_client)
        server, to_server = await asyncio.open_connection(*self._server)
        try:
            to_server.write(packet)
            if struct.unpack_from("!i", packet, 4)[0] == CANCEL_REQUEST:
                link = None  # no protocol follows: the server acts and closes
            else:
                link = _Link(self._tally)
            pumps = [
                asyncio.create_task(
                    _pump(client, to_server, link.client_sent if link else _ignore)
                ),
                asyncio.create_task(
                    _pump(server, to_client, link.server_sent if link else _ignore)
                ),
            ]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            to_server.close()
            with contextlib.suppress(OSError):
                await to_server.wait_closed()


def _ignore(data: bytes) -> None:
    """What a cancel request's bytes are counted as."""
