"""Names of the named actors and their namespace: the one place they are spelt."""

from __future__ import annotations

import uuid
import zlib

NAMESPACE = "phonefleet"
HOUSEKEEPER = "phonefleet-housekeeper"
QUEUE = "phonefleet-queue"
INBOX = "phonefleet-inbox"
NODE_ACTOR_PREFIX = "phonefleet-node-"


def node_actor_name(node_id: uuid.UUID, shards: int) -> str:
    """One actor per node by default; with ``shards`` > 0, nodes hash onto that many actors
    (simulated fleets of hundreds of nodes must not cost a process each)."""
    if shards <= 0:
        return f"{NODE_ACTOR_PREFIX}{node_id}"
    return f"{NODE_ACTOR_PREFIX}shard-{zlib.crc32(node_id.bytes) % shards}"


def host_resource(host: str) -> str:
    """The Ray resource a phone host's Ray node offers (``ray start --resources``) so that
    the NodeActors of that host's nodes run there and nowhere else."""
    return f"phonefleet-host:{host}"


def node_of_actor(name: str) -> uuid.UUID | None:
    """The one node a per-node actor serves (None for a shard's actor)."""
    suffix = name.removeprefix(NODE_ACTOR_PREFIX)
    try:
        return uuid.UUID(suffix)
    except ValueError:
        return None
