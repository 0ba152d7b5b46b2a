"""deploy/serve_config.yaml, rendered as cluster.yaml renders it, carries no password; the
KubeRay RayService manifest is valid against the CRD's own schema (vendored) and builds the
app from the pods' environment."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from actors.names import host_resource
from scheduler.config import Settings
from serve.deployment import SERVE_OPTIONS

ROOT = Path(__file__).resolve().parents[2]


def _render(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return os.path.expandvars((ROOT / "deploy" / "serve_config.yaml").read_text())


def test_the_rendered_serve_config_holds_no_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "database_password").write_text("pg-secret-value\n")
    rendered = _render(
        {
            "PHONEFLEET_DATABASE_URL": "postgresql+psycopg://phonefleet@db.internal:5432/fleet",
            "PHONEFLEET_DATABASE_PASSWORD_FILE": str(tmp_path / "database_password"),
            "PHONEFLEET_REDIS_URL": "redis://cache.internal:6379/0",
            "PHONEFLEET_REDIS_PASSWORD_FILE": "",
        },
        monkeypatch,
    )

    assert "pg-secret-value" not in rendered
    config = ServeDeploySchema.model_validate(yaml.safe_load(rendered))
    (application,) = config.applications
    settings = Settings(**{k: v for k, v in application.args.items() if k not in SERVE_OPTIONS})
    database_url, redis_url = settings.require_urls()  # what each replica does on start
    assert database_url == "postgresql+psycopg://phonefleet:pg-secret-value@db.internal:5432/fleet"
    assert redis_url == "redis://cache.internal:6379/0"


def test_up_moves_the_urls_passwords_into_files_only_it_can_read(tmp_path: Path) -> None:
    from scheduler.cli.bring_up import passwords_to_files

    settings = Settings(
        database_url="postgresql://fleet:p%40ss@db.internal:5432/fleet",
        redis_url="redis://:r3dis@cache.internal:6379/0",
    )

    moved = passwords_to_files(settings, tmp_path)

    assert "p%40ss" not in str(moved.for_workers())
    assert "r3dis" not in str(moved.for_workers())
    assert (tmp_path / "database_password").read_text() == "p@ss\n"
    assert (tmp_path / "database_password").stat().st_mode & 0o777 == 0o600
    assert moved.require_urls() == settings.require_urls()


KUBERAY = ROOT / "deploy" / "kuberay"


def _rayservice() -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((KUBERAY / "rayservice.yaml").read_text())
    return manifest


def _crd_errors(manifest: dict[str, Any]) -> list[str]:
    schema = json.loads((KUBERAY / "rayservice-v1.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(manifest)]


def test_the_kuberay_manifest_is_a_valid_rayservice() -> None:
    manifest = _rayservice()
    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayService")
    assert _crd_errors(manifest) == []


def test_the_crd_schema_catches_a_broken_manifest() -> None:
    manifest = _rayservice()
    manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] = "two"
    del manifest["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"]
    errors = _crd_errors(manifest)
    assert any("'two' is not of type 'integer'" in e for e in errors), errors
    assert any("'containers' is a required property" in e for e in errors), errors


def test_the_manifests_serve_config_builds_the_app_from_the_pods_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = _rayservice()["spec"]
    config = ServeDeploySchema.model_validate(yaml.safe_load(spec["serveConfigV2"]))
    (application,) = config.applications
    assert application.import_path == "serve.deployment:app_builder"
    monkeypatch.setenv("PHONEFLEET_DATABASE_URL", "postgresql+psycopg://pf:secret@db:5432/fleet")
    monkeypatch.setenv("PHONEFLEET_REDIS_URL", "redis://cache:6379/0")
    settings = Settings(**{k: v for k, v in application.args.items() if k not in SERVE_OPTIONS})
    assert settings.require_urls()[0].endswith("@db:5432/fleet")  # from the Secret, not here
    assert "secret" not in spec["serveConfigV2"]
    cluster = spec["rayClusterConfig"]
    (hosts,) = cluster["workerGroupSpecs"]
    offered = json.loads(json.loads(hosts["rayStartParams"]["resources"]))
    assert offered == {"phone_host": 1, host_resource("$(hostname)"): 1}
    assert settings.node_actor_placement == "host"
    assert hosts["template"]["spec"]["hostNetwork"] is True  # $(hostname) is the node's name
    for group in (cluster["headGroupSpec"], hosts):
        assert group["rayStartParams"]["metrics-export-port"] == "8080"
        (container,) = group["template"]["spec"]["containers"]
        secrets = {e["name"] for e in container["env"] if "valueFrom" in e}
        assert {"PHONEFLEET_DATABASE_URL", "PHONEFLEET_REDIS_URL"} <= secrets
