"""deploy/serve_config.yaml, rendered as cluster.yaml renders it, carries no password."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

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
    from serve.cli import _passwords_to_files

    settings = Settings(
        database_url="postgresql://fleet:p%40ss@db.internal:5432/fleet",
        redis_url="redis://:r3dis@cache.internal:6379/0",
    )

    moved = _passwords_to_files(settings, tmp_path)

    assert "p%40ss" not in str(moved.for_workers())
    assert "r3dis" not in str(moved.for_workers())
    assert (tmp_path / "database_password").read_text() == "p@ss\n"
    assert (tmp_path / "database_password").stat().st_mode & 0o777 == 0o600
    assert moved.require_urls() == settings.require_urls()
