"""Every command, its handler, and the result types its stored outcome may hold: the table
the command path dispatches on (routes, jobs and consumers all send commands through it)."""

from __future__ import annotations

from typing import Any

from scheduler.domain.fleet import Device, Node
from scheduler.domain.identity import TokenInfo
from scheduler.domain.queueing import QueueEntry
from scheduler.domain.reservations import Reservation
from scheduler.domain.strategies import StrategyDefinition
from scheduler.domain.tenants import Tenant
from scheduler.services import (
    allocations,
    batch,
    device_health,
    extensions,
    fleet,
    host_placement,
    inbox,
    node_operations,
    queue,
    rebalancing,
    reservations,
    strategy_catalogue,
    tenancy,
)
from scheduler.services.command_path import Route
from scheduler.services.commands import (
    AddDevices,
    AddedDevices,
    AllocateDevice,
    Count,
    CreateTenant,
    CreateToken,
    ExpireDueAllocations,
    ExtendAllocation,
    Extended,
    Grant,
    ProvisionDevices,
    ProvisionedDevices,
    RegisterNode,
    Release,
    ReleaseAllocation,
    RevokeToken,
    SetNodeSchedulable,
    SetStrategy,
    StrategySet,
    TokenIssued,
    UpdateTenant,
)

ROUTES: dict[type, Route[Any, Any]] = {
    AllocateDevice: Route(allocations.allocate_device, (Grant, queue.Queued)),
    ReleaseAllocation: Route(allocations.release_allocation, (Release,)),
    ExpireDueAllocations: Route(allocations.expire_due_allocations, (Count,)),
    ExtendAllocation: Route(extensions.extend_allocation, (Extended,)),
    batch.AllocateBatch: Route(batch.allocate_batch, (batch.BatchOutcomes[Grant],)),
    batch.ReleaseBatch: Route(batch.release_batch, (batch.BatchOutcomes[Release],)),
    batch.ExtendBatch: Route(batch.extend_batch, (batch.BatchOutcomes[Extended],)),
    queue.JoinQueue: Route(queue.join_queue, (queue.Queued,)),
    queue.CancelQueueEntry: Route(queue.cancel_entry, (QueueEntry,)),
    queue.DrainQueue: Route(queue.drain_now, (Count,), acts_outside=True),
    reservations.Reserve: Route(reservations.create_reservation, (Reservation,)),
    reservations.UpdateReservation: Route(reservations.update_reservation, (Reservation,)),
    reservations.CancelReservation: Route(reservations.cancel_reservation, (Reservation,)),
    reservations.CheckIn: Route(reservations.check_in, (Reservation,)),
    RegisterNode: Route(fleet.register_node, (Node,)),
    node_operations.SetMaintenance: Route(node_operations.set_maintenance, (Node,)),
    node_operations.DrainNode: Route(node_operations.drain_node, (Node,)),
    node_operations.UpdateNode: Route(node_operations.update_node, (Node,)),
    node_operations.RemoveNode: Route(node_operations.remove_node, (Node,)),
    node_operations.UpdateDevice: Route(node_operations.update_device, (Device,)),
    node_operations.RetireDevice: Route(node_operations.retire_device, (Device,)),
    node_operations.RescheduleLease: Route(
        node_operations.reschedule_lease, (device_health.Relocation,)
    ),
    rebalancing.StartRebalance: Route(rebalancing.start_rebalance, (rebalancing.RebalanceStarted,)),
    device_health.ReportDevice: Route(device_health.report_device, (device_health.DeviceReported,)),
    SetNodeSchedulable: Route(fleet.set_node_schedulable, (Node,)),
    AddDevices: Route(fleet.add_devices, (AddedDevices,)),
    ProvisionDevices: Route(host_placement.provision_devices, (ProvisionedDevices,)),
    CreateTenant: Route(tenancy.create_tenant, (Tenant,)),
    UpdateTenant: Route(tenancy.update_tenant, (Tenant,)),
    CreateToken: Route(tenancy.create_token, (TokenIssued,)),
    RevokeToken: Route(tenancy.revoke_token, (TokenInfo,)),
    SetStrategy: Route(strategy_catalogue.set_strategy, (StrategySet,)),
    strategy_catalogue.CreateStrategy: Route(
        strategy_catalogue.create_strategy, (StrategyDefinition,)
    ),
    strategy_catalogue.UpdateStrategy: Route(
        strategy_catalogue.update_strategy, (StrategyDefinition,)
    ),
    strategy_catalogue.DeleteStrategy: Route(
        strategy_catalogue.delete_strategy, (StrategyDefinition,)
    ),
    strategy_catalogue.ActivateStrategy: Route(
        strategy_catalogue.activate_strategy, (StrategyDefinition,)
    ),
    inbox.ApplyInbound: Route(inbox.apply_inbound, (inbox.InboundApplied,)),
}
