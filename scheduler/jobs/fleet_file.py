"""A fleet file: nodes and their devices, as JSON or CSV, read and validated row by row with
the API's own bodies (``POST /scheduler/nodes``, ``POST /scheduler/nodes/{id}/devices``),
so a file is refused for exactly what the API refuses.

JSON: ``{"nodes": [...]}`` (or the list alone), each node the body of ``POST
/scheduler/nodes`` plus ``devices``: a list of bodies of ``POST …/devices`` (``count``,
``spec``, ``labels``): the devices the node should have.

CSV, one row per group of alike devices on a node (a node's columns repeat on its rows, or
stay empty after its first)::

    node,host,cpu_cores,memory_mb,storage_mb,max_devices,labels,taints,devices,device_cpu_cores,device_memory_mb,device_storage_mb,android_version,device_labels
    host-1,10.0.0.1,64,262144,4194304,20,region=eu;zone=a,gpu=true:NoSchedule,10,2,4096,32768,13,

``labels``: ``key=value`` pairs split by ``;``; ``taints``: ``key=value:Effect`` (or
``key:Effect``) split by ``;``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from serve.schemas.fleet import AddDevicesIn, NodeIn

NODE_COLUMNS = ("host", "cpu_cores", "memory_mb", "storage_mb", "max_devices", "labels", "taints")
CSV_COLUMNS = (
    "node",
    *NODE_COLUMNS,
    "devices",
    "device_cpu_cores",
    "device_memory_mb",
    "device_storage_mb",
    "android_version",
    "device_labels",
)


@dataclass(frozen=True, slots=True)
class FleetRow:
    """One valid row: a node, and one group of devices it should have (``None``: a node
    listed without devices). ``where`` names the row in the file (``line 7``,
    ``nodes[2].devices[0]``)."""

    where: str
    node: NodeIn
    devices: AddDevicesIn | None


@dataclass(frozen=True, slots=True)
class BadRow:
    where: str
    reason: str


def read_fleet_file(name: str, text: str) -> tuple[list[FleetRow], list[BadRow]]:
    """Every row of the file, valid or not (by the name's suffix: ``.json`` or ``.csv``)."""
    if name.endswith(".json"):
        return _split(_json_rows(text))
    if name.endswith(".csv"):
        return _split(_csv_rows(text))
    return [], [BadRow("file", "the file must be .json or .csv")]


def _split(
    rows: Iterator[tuple[str, dict[str, Any] | str, dict[str, Any] | None]],
) -> tuple[list[FleetRow], list[BadRow]]:
    good: list[FleetRow] = []
    bad: list[BadRow] = []
    for where, node, devices in rows:
        if isinstance(node, str):
            bad.append(BadRow(where, node))
            continue
        try:
            good.append(
                FleetRow(
                    where,
                    NodeIn.model_validate(node),
                    None if devices is None else AddDevicesIn.model_validate(devices),
                )
            )
        except ValidationError as error:
            bad.append(BadRow(where, _reason(error)))
    return good, bad


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _json_rows(text: str) -> Iterator[tuple[str, dict[str, Any] | str, dict[str, Any] | None]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        yield "file", f"not JSON: {error}", None
        return
    nodes = data.get("nodes") if isinstance(data, dict) else data
    if not isinstance(nodes, list):
        yield "file", 'expected {"nodes": [...]} or a list of nodes', None
        return
    for i, node in enumerate(nodes):
        where = f"nodes[{i}]"
        if not isinstance(node, dict):
            yield where, "a node is an object", None
            continue
        body = {k: v for k, v in node.items() if k != "devices"}
        groups = node.get("devices") or []
        if not isinstance(groups, list):
            yield where, "devices is a list", None
            continue
        if not groups:
            yield where, body, None
        for j, group in enumerate(groups):
            if not isinstance(group, dict):
                yield f"{where}.devices[{j}]", "a device group is an object", None
                continue
            yield f"{where}.devices[{j}]", body, group


def _csv_rows(text: str) -> Iterator[tuple[str, dict[str, Any] | str, dict[str, Any] | None]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        yield "line 1", f"missing columns: {', '.join(missing)}", None
        return
    first: dict[str, dict[str, str]] = {}
    for row in reader:
        where = f"line {reader.line_num}"
        name = (row.get("node") or "").strip()
        if not name:
            yield where, "node: the node's name is empty", None
            continue
        known = first.setdefault(name, row)
        conflict = [
            c for c in NODE_COLUMNS if (row.get(c) or "").strip() not in ("", known[c].strip())
        ]
        if conflict:
            yield where, f"{', '.join(conflict)}: differs from the node's first row", None
            continue
        try:
            node = {
                "name": name,
                "host": known["host"].strip() or None,
                "capacity": {
                    "cpuCores": known["cpu_cores"],
                    "memoryMB": known["memory_mb"],
                    "storageMB": known["storage_mb"],
                    "maxDevices": known["max_devices"],
                },
                "labels": _pairs(known["labels"]),
                "taints": _taints(known["taints"]),
            }
        except ValueError as error:
            yield where, str(error), None
            continue
        if not (row.get("devices") or "").strip():
            yield where, node, None
            continue
        try:
            devices = {
                "count": row["devices"],
                "spec": {
                    "cpuCores": row["device_cpu_cores"],
                    "memoryMB": row["device_memory_mb"],
                    "storageMB": row["device_storage_mb"],
                    "androidVersion": row["android_version"],
                },
                "labels": _pairs(row["device_labels"]),
            }
        except ValueError as error:
            yield where, str(error), None
            continue
        yield where, node, devices


def _pairs(text: str | None) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in (text or "").split(";"))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"labels: {item!r} is not key=value")
        pairs[key.strip()] = value.strip()
    return pairs


def _taints(text: str | None) -> list[dict[str, str]]:
    taints = []
    for item in filter(None, (p.strip() for p in (text or "").split(";"))):
        pair, sep, effect = item.rpartition(":")
        if not sep or not pair:
            raise ValueError(f"taints: {item!r} is not key=value:Effect")
        key, _, value = pair.partition("=")
        taints.append({"key": key, "value": value, "effect": effect})
    return taints
