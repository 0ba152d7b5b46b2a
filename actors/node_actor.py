"""``NodeActor``: the Ray shell around a ``NodeAgent`` for one node (or a shard of nodes).

It provisions and resets devices through the device driver and reconciles on a timer, so a
reset request lost with a crashed caller is still carried out. In production each phone host
is a Ray worker node and its NodeActor is pinned there by node affinity.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import ray

from actors.names import NAMESPACE, node_actor_name, node_of_actor
from scheduler.bootstrap import build_driver, build_services, utc_now
from scheduler.config import Settings
from scheduler.services.node_agent import NodeAgent, reconcile_forever

logger = logging.getLogger(__name__)


class NodeActor:
    """Serves the nodes whose actor name (``node_actor_name``) is ``name``: its own node, or a
    shard's nodes, which it adopts from the database on every reconcile. A restarted actor
    (Ray re-runs this constructor) so takes every node back before its first tick's resets."""

    def __init__(self, settings: dict[str, Any], name: str) -> None:
        self._settings = Settings(**settings)
        shards = self._settings.node_actor_shards
        own_node = node_of_actor(name)
        from actors.queue_actor import RayQueueDispatcher  # the queue actor needs this module

        self._services = build_services(
            self._settings,
            RayDeviceLifecycle(self._settings),
            lambda changes: RayQueueDispatcher(self._settings, changes),
        )
        self._agent = NodeAgent(
            self._services.uow,
            build_driver(self._settings),
            utc_now,
            self._services.queue,
            serves=None if own_node else lambda node_id: node_actor_name(node_id, shards) == name,
        )
        if own_node:
            self._agent.adopt(own_node)
        self._loop_task = asyncio.get_event_loop().create_task(
            reconcile_forever(
                self._agent,
                self._settings.node_reconcile_seconds,
                self._settings.heartbeat_seconds,
            )
        )

    async def provision(self, node_id: str, device_ids: Sequence[str]) -> int:
        return await self._agent.provision(uuid.UUID(node_id), [uuid.UUID(d) for d in device_ids])

    async def reset(self, node_id: str, device_ids: Sequence[str]) -> int:
        return await self._agent.reset(uuid.UUID(node_id), [uuid.UUID(d) for d in device_ids])

    async def simulate(self, node_id: str, device_id: str | None, action: str) -> None:
        await self._agent.simulate(
            uuid.UUID(node_id), uuid.UUID(device_id) if device_id else None, action
        )

    async def adopt(self, node_id: str) -> None:
        self._agent.adopt(uuid.UUID(node_id))

    async def node_ids(self) -> list[str]:
        return [str(n) for n in self._agent.node_ids]


RemoteNodeActor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(NodeActor)


def node_actor_handle(settings: Settings, node_id: uuid.UUID) -> Any:
    """The actor serving ``node_id``, created (detached) on first use."""
    name = node_actor_name(node_id, settings.node_actor_shards)
    return RemoteNodeActor.options(  # type: ignore[attr-defined]
        name=name,
        namespace=NAMESPACE,
        get_if_exists=True,
        lifetime="detached",
        resources=settings.node_actor_resources or None,
    ).remote(settings.for_workers(), name)


class RayDeviceLifecycle:
    """``DeviceLifecycle`` over node actors: provisioning is awaited (admin path), resets are
    fire-and-forget (the release path never waits on a node)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._handles: dict[uuid.UUID, Any] = {}

    def _handle(self, node_id: uuid.UUID) -> Any:
        handle = self._handles.get(node_id)
        if handle is None:
            handle = self._handles[node_id] = node_actor_handle(self._settings, node_id)
        return handle

    def ensure_actors(self, node_ids: Sequence[uuid.UUID]) -> None:
        """Make sure every node has its actor (after a cluster restart, say)."""
        for node_id in node_ids:
            self._handle(node_id)

    async def provision(self, node_id: uuid.UUID, device_ids: Sequence[uuid.UUID]) -> None:
        await self._handle(node_id).provision.remote(str(node_id), [str(d) for d in device_ids])

    async def simulate(self, node_id: uuid.UUID, device_id: uuid.UUID | None, action: str) -> None:
        device = str(device_id) if device_id else None
        await self._handle(node_id).simulate.remote(str(node_id), device, action)

    def start_agent(self, node_id: uuid.UUID) -> None:
        try:
            self._handle(node_id).adopt.remote(str(node_id))
        except Exception:
            # A shard's actor adopts its nodes from the database on every reconcile.
            logger.exception("could not reach the node actor of %s", node_id)
            self._handles.pop(node_id, None)

    def request_reset(self, node_id: uuid.UUID, device_ids: Sequence[uuid.UUID]) -> None:
        try:
            self._handle(node_id).reset.remote(str(node_id), [str(d) for d in device_ids])
        except Exception:
            # The node actor reconciles resetting devices on its timer; nothing is lost.
            logger.exception("could not reach the node actor of %s", node_id)
            self._handles.pop(node_id, None)
