"""Fleet files read row by row: each bad row named by its place with its reason, the good
ones as the API's bodies."""

from __future__ import annotations

import json

from scheduler.jobs.fleet_file import CSV_COLUMNS, read_fleet_file

HEADER = ",".join(CSV_COLUMNS)


def test_a_csv_node_spans_rows_and_its_labels_and_taints_are_parsed() -> None:
    text = "\n".join(
        [
            HEADER,
            "n1,h1,8,16384,131072,4,region=eu;zone=a,gpu=true:NoSchedule;spot:PreferNoSchedule,"
            "2,2,4096,32768,13,tier=gold",
            "n1,,,,,,,,1,4,8192,65536,14,",
            "n2,h2,8,16384,131072,4,,,,,,,,",
        ]
    )
    rows, bad = read_fleet_file("fleet.csv", text)
    assert bad == []
    first, second, third = rows
    assert first.node.labels == {"region": "eu", "zone": "a"}
    assert [(t.key, t.value, t.effect) for t in first.node.taints] == [
        ("gpu", "true", "NoSchedule"),
        ("spot", "", "PreferNoSchedule"),
    ]
    assert first.devices is not None and first.devices.labels == {"tier": "gold"}
    assert second.node == first.node and second.devices is not None
    assert second.devices.spec.androidVersion == "14"
    assert third.devices is None and third.where == "line 4"


def test_bad_csv_rows_are_named_by_line_with_their_reason() -> None:
    text = "\n".join(
        [
            HEADER,
            "n1,h1,8,16384,131072,4,,,1,2,4096,32768,13,",
            "n1,h9,,,,,,,1,2,4096,32768,13,",  # another host for n1
            ",h1,8,16384,131072,4,,,1,2,4096,32768,13,",  # no name
            "n3,h3,8,16384,131072,4,,gpu,1,2,4096,32768,13,",  # a taint without its effect
            "n4,h4,eight,16384,131072,4,,,1,2,4096,32768,13,",  # not a number
        ]
    )
    rows, bad = read_fleet_file("fleet.csv", text)
    assert [r.where for r in rows] == ["line 2"]
    reasons = {b.where: b.reason for b in bad}
    assert reasons["line 3"].startswith("host: differs")
    assert "name" in reasons["line 4"]
    assert reasons["line 5"].startswith("taints:")
    assert reasons["line 6"].startswith("capacity.cpuCores")


def test_files_that_are_not_fleet_files_are_refused_whole() -> None:
    assert read_fleet_file("fleet.csv", "a,b\n1,2\n")[1][0].reason.startswith("missing columns")
    assert read_fleet_file("fleet.json", "{nope")[1][0].reason.startswith("not JSON")
    assert read_fleet_file("fleet.json", json.dumps({"nodes": 3}))[1][0].where == "file"
    assert read_fleet_file("fleet.yaml", "")[1][0].reason == "the file must be .json or .csv"
