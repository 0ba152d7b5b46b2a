"""A node agent that (re)starts takes back the nodes it serves from the database, and finishes
the resets a lost call or a crash left behind."""

from __future__ import annotations

import uuid

import httpx

from actors.names import node_actor_name, node_of_actor
from scheduler.adapters.simulated_driver import SimulatedDeviceDriver
from scheduler.bootstrap import Services
from scheduler.services.node_agent import NodeAgent
from tests.builders import new_pool, run_sql

SHARDS = 3


async def test_a_restarted_shard_agent_adopts_its_nodes_and_finishes_their_resets(
    client: httpx.AsyncClient, admin_token: str, services: Services
) -> None:
    pools = [await new_pool(client, admin_token, devices=2)]
    shard = node_actor_name(uuid.UUID(pools[0].node["id"]), SHARDS)
    while len({node_actor_name(uuid.UUID(p.node["id"]), SHARDS) == shard for p in pools}) < 2:
        pools.append(await new_pool(client, admin_token, devices=2))  # one in it, one not
    pools.append(await new_pool(client, admin_token, devices=2))
    nodes = [uuid.UUID(p.node["id"]) for p in pools]
    devices = [uuid.UUID(d["id"]) for p in pools for d in p.devices]
    # Leases ended and their resets were sent to an actor that then died: nothing drives them.
    await run_sql(
        services,
        "UPDATE devices SET status = 'resetting' WHERE id = ANY(%(ids)s::uuid[])",
        {"ids": [str(d) for d in devices]},
    )
    agent = NodeAgent(
        services.uow,
        SimulatedDeviceDriver(0.0, 0.0),
        services.clock,
        services.queue,
        serves=lambda node_id: node_actor_name(node_id, SHARDS) == shard,
    )

    await agent.reconcile()  # its first tick after the restart

    mine = {n for n in nodes if node_actor_name(n, SHARDS) == shard}
    assert mine <= set(agent.node_ids)
    assert not set(agent.node_ids) & (set(nodes) - mine)
    rows = await run_sql(
        services,
        "SELECT node_id, status FROM devices WHERE id = ANY(%(ids)s::uuid[])",
        {"ids": [str(d) for d in devices]},
    )
    assert {r["node_id"]: r["status"] for r in rows} == {
        n: "available" if n in mine else "resetting" for n in nodes
    }


def test_a_per_node_actor_is_named_after_its_node_and_a_shard_after_none() -> None:
    node = uuid.uuid4()

    assert node_of_actor(node_actor_name(node, 0)) == node
    assert node_of_actor(node_actor_name(node, 4)) is None
