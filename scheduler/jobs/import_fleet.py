"""Import a fleet: nodes and their devices from a JSON or CSV file (``scheduler.jobs.fleet_file``
gives the formats), applied through the same commands as the API.

    python -m scheduler.jobs.import_fleet --file fleet.csv [--dry-run]

Every row is validated first; each bad row is reported by its place in the file with its
reason, and the good ones are applied. The file says what the fleet should have: a node
that exists (by name) is not registered again, and a node gets only the devices of a group
it lacks, so a rerun after a crash (or of the same file) creates nothing twice. A node that
exists with other settings is reported and left as it is. ``--dry-run`` reports what would
be created.
"""

from __future__ import annotations

import argparse
import hashlib
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from scheduler.bootstrap import Services
from scheduler.config import Settings
from scheduler.domain.errors import SchedulerError
from scheduler.domain.fleet import Device, Node, NodeStatus
from scheduler.domain.identity import SYSTEM
from scheduler.domain.jobs import JobError
from scheduler.domain.resources import Resources
from scheduler.jobs.fleet_file import FleetRow, read_fleet_file
from scheduler.jobs.run import JobRun, job_services, run_job
from scheduler.services.commands import RegisterNode

KIND = "import_fleet"
#: What makes devices alike in a group: size, Android version, labels.
GroupKey = tuple[float, int, int, str, tuple[tuple[str, str], ...]]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m scheduler.jobs.{KIND}", description=__doc__)
    parser.add_argument("--file", type=Path, required=True, help="fleet.json or fleet.csv")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    if args.file.suffix not in (".json", ".csv"):
        parser.error("--file must be a .json or .csv file")
    return args


def _group(resources: Resources, android_version: str, labels: Mapping[str, str]) -> GroupKey:
    return (
        float(resources.cpu_cores),
        resources.memory_mb,
        resources.storage_mb,
        android_version,
        tuple(sorted(labels.items())),
    )


def _differs(node: Node, wanted: RegisterNode) -> str | None:
    """What of the file's node the existing one does not have, if anything."""
    differences = [
        name
        for name, have, want in (
            ("capacity", node.capacity.resources, wanted.resources),
            ("maxDevices", node.capacity.max_devices, wanted.max_devices),
            ("labels", dict(node.labels), wanted.labels),
            ("taints", tuple(node.taints), wanted.taints),
        )
        if have != want
    ]
    return ", ".join(differences) or None


class _Import:
    """The fleet as it is, by node name, updated as rows are applied (or would be, in a dry
    run: a node it would register is known by name only, ``None``)."""

    def __init__(self, nodes: list[Node], devices: list[Device], *, dry_run: bool) -> None:
        live = [n for n in nodes if n.status is not NodeStatus.REMOVED]
        self.nodes: dict[str, Node | None] = {n.name: n for n in live}
        name_of = {n.id: n.name for n in live}
        self.have: Counter[tuple[str, GroupKey]] = Counter(
            (name_of[d.node_id], _group(d.spec.resources, d.spec.android_version, d.spec.labels))
            for d in devices
            if d.node_id in name_of
        )
        self.dry_run = dry_run
        self.created: Counter[str] = Counter()
        self.checked: set[str] = set()


async def run(args: argparse.Namespace, settings: Settings | None = None) -> JobRun:
    """Validate the file, then apply its good rows; the finished run."""
    services = job_services(settings or Settings())
    text = args.file.read_text()
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    params = {"file": str(args.file), "sha256": digest, "dryRun": args.dry_run}
    try:
        async with JobRun(services, KIND, params) as job:
            rows, bad = read_fleet_file(args.file.name, text)
            job.expect(len(rows) + len(bad))
            for index, invalid in enumerate(bad):
                print(f"{invalid.where}: {invalid.reason}", flush=True)
                error = JobError(index, invalid.where, "invalid_row", invalid.reason)
                await job.advance("invalid", error=error)
            async with services.uow() as uow:
                state = _Import(
                    await uow.nodes.list(), await uow.devices.occupying(), dry_run=args.dry_run
                )
            for index, row in enumerate(rows, start=len(bad)):
                try:
                    outcome = await _apply(services, state, row, digest)
                except SchedulerError as refusal:
                    print(f"{row.where}: {refusal.code}: {refusal}", flush=True)
                    error = JobError(index, row.where, refusal.code, str(refusal))
                    await job.advance("failed", error=error)
                    continue
                await job.advance(outcome)
            job.result = {
                "dryRun": args.dry_run,
                "nodesCreated": state.created["nodes"],
                "devicesCreated": state.created["devices"],
                "rows": len(rows) + len(bad),
                "badRows": len(bad),
            }
        return job
    finally:
        await services.close()


async def _apply(services: Services, state: _Import, row: FleetRow, digest: str) -> str:
    """Register the row's node if it is new, and add the devices its group lacks: the row's
    outcome (``created``, ``unchanged``, or a dry run's ``would_create``).

    Raises:
        NodeDiffers: the node exists with other settings (reported once, on its first row).
        SchedulerError: what the command refused (a node that cannot hold the devices…).
    """
    wanted = row.node.to_command()
    name = wanted.name
    created = False
    if name not in state.nodes:
        state.nodes[name] = None if state.dry_run else await _register(services, wanted, digest)
        state.created["nodes"] += 1
        state.checked.add(name)
        created = True
    elif name not in state.checked:
        state.checked.add(name)
        node = state.nodes[name]
        if node is not None and (difference := _differs(node, wanted)):
            raise NodeDiffers(f"node {name} exists with other {difference}; left as it is")
    if row.devices is not None:
        node = state.nodes[name]
        command = row.devices.to_command(node.id if node else uuid.UUID(int=0))
        key = (name, _group(command.resources, command.android_version, command.labels))
        missing = command.count - state.have[key]
        if missing > 0:
            if not state.dry_run:
                added = await services.commands.handle(
                    replace(command, count=missing), SYSTEM, f"import-fleet:{digest}:{row.where}"
                )
                missing = len(added.result.devices)
            state.have[key] += missing
            state.created["devices"] += missing
            created = True
    if not created:
        return "unchanged"
    return "would_create" if state.dry_run else "created"


async def _register(services: Services, command: RegisterNode, digest: str) -> Node:
    key = f"import-fleet:{digest}:{command.name}"
    handled = await services.commands.handle(command, SYSTEM, key)
    node: Node = handled.result
    return node


class NodeDiffers(SchedulerError):
    """A node of the file exists with other settings; it was left as it is."""

    code = "node_differs"


def main(argv: Sequence[str] | None = None) -> None:
    run_job(argv, parse_args, run)


if __name__ == "__main__":
    main()
