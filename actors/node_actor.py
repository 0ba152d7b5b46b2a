"""``NodeActor``: the Ray shell around a ``NodeAgent`` for one node (or a shard of nodes).

It provisions and resets devices through the device driver and reconciles on a timer, so a
reset request lost with a crashed caller is still carried out. In production each phone host
is a Ray worker node offering the resource ``phonefleet-host:<host>``, and with
``node_actor_placement = "host"`` each node's NodeActor asks for a sliver of it: it runs on
its host's Ray node, Ray restarts it there after a crash, and it waits while that node is down.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import ray

from actors.names import NAMESPACE, host_resource, node_actor_name, node_of_actor
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

#: What a NodeActor placed by host asks of its host's Ray node: a sliver, so that the actors
#: of every node of one host fit.
HOST_SHARE = 0.001
#: How long ``provision`` gives an actor placed by host to answer before it stops waiting.
PLACED_ACTOR_ANSWER_S = 2.0


def node_actor_handle(settings: Settings, node_id: uuid.UUID, host: str | None = None) -> Any:
    """The actor serving ``node_id``, created (detached) on first use — except when actors are
    placed by host (``node_actor_placement``) and ``host`` is not given: then it is only
    looked up, and None when it does not exist (the housekeeper creates it)."""
    name = node_actor_name(node_id, settings.node_actor_shards)
    resources = dict(settings.node_actor_resources)
    if settings.node_actor_placement == "host":
        if host is None:
            try:
                return ray.get_actor(name, namespace=NAMESPACE)
            except ValueError:
                return None
        resources[host_resource(host)] = HOST_SHARE
    return RemoteNodeActor.options(  # type: ignore[attr-defined]
        name=name,
        namespace=NAMESPACE,
        get_if_exists=True,
        lifetime="detached",
        resources=resources or None,
    ).remote(settings.for_workers(), name)


class RayDeviceLifecycle:
    """``DeviceLifecycle`` over node actors: provisioning is awaited (admin path), resets are
    fire-and-forget (the release path never waits on a node)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._handles: dict[uuid.UUID, Any] = {}

    def _handle(self, node_id: uuid.UUID, host: str | None = None) -> Any:
        handle = self._handles.get(node_id)
        if handle is None:
            handle = node_actor_handle(self._settings, node_id, host)
            if handle is not None:
                self._handles[node_id] = handle
        return handle

    def ensure_actors(self, nodes: Sequence[tuple[uuid.UUID, str]]) -> None:
        """Make sure every node (id, host) has its actor (after a cluster restart, say)."""
        for node_id, host in nodes:
            self._handle(node_id, host)

    async def provision(self, node_id: uuid.UUID, device_ids: Sequence[uuid.UUID]) -> None:
        """Provision and wait — unless the node's actor waits for its host's Ray node (placed
        by host, and that node is not up): then the agent provisions once it runs there."""
        handle = self._handle(node_id)
        if handle is None:
            logger.warning("node %s has no agent yet: it provisions once it runs", node_id)
            return
        call = handle.provision.remote(str(node_id), [str(d) for d in device_ids])
        if self._settings.node_actor_placement == "host":
            try:
                await asyncio.wait_for(_answer(handle), PLACED_ACTOR_ANSWER_S)
            except TimeoutError:
                logger.warning(
                    "node %s: its host's Ray node is not up; it provisions then", node_id
                )
                return
        await call

    async def simulate(self, node_id: uuid.UUID, device_id: uuid.UUID | None, action: str) -> None:
        device = str(device_id) if device_id else None
        handle = self._handle(node_id)
        if handle is None:
            raise RuntimeError(f"node {node_id} has no agent")
        await handle.simulate.remote(str(node_id), device, action)

    def start_agent(self, node_id: uuid.UUID, host: str) -> None:
        try:
            self._handle(node_id, host).adopt.remote(str(node_id))
        except Exception:
            # A shard's actor adopts its nodes from the database on every reconcile.
            logger.exception("could not reach the node actor of %s", node_id)
            self._handles.pop(node_id, None)

    def request_reset(self, node_id: uuid.UUID, device_ids: Sequence[uuid.UUID]) -> None:
        try:
            handle = self._handle(node_id)
            if handle is None:
                logger.warning("node %s has no agent yet: it resets once it runs", node_id)
                return
            handle.reset.remote(str(node_id), [str(d) for d in device_ids])
        except Exception:
            # The node actor reconciles resetting devices on its timer; nothing is lost.
            logger.exception("could not reach the node actor of %s", node_id)
            self._handles.pop(node_id, None)


async def _answer(handle: Any) -> None:
    await handle.node_ids.remote()
