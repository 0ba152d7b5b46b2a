from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from scheduler.config import Settings, has_password, with_password_from


@pytest.fixture(autouse=True)
def _no_phonefleet_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read ``PHONEFLEET_*``; the machine's own values must not leak into a test."""
    for name in list(os.environ):
        if name.upper().startswith("PHONEFLEET_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    "given",
    [
        "postgresql://fleet:secret@db.internal:5432/phonefleet",
        "postgres://fleet:secret@db.internal:5432/phonefleet",
        "postgresql+psycopg2://fleet:secret@db.internal:5432/phonefleet",
    ],
    ids=["postgresql", "postgres", "psycopg2"],
)
def test_a_plain_postgres_url_is_pointed_at_psycopg3(given: str) -> None:
    settings = Settings(database_url=given)

    assert settings.database_url == "postgresql+psycopg://fleet:secret@db.internal:5432/phonefleet"


def test_a_psycopg3_url_is_kept_as_given() -> None:
    url = "postgresql+psycopg://fleet@localhost/phonefleet?sslmode=require"

    assert Settings(database_url=url).database_url == url


def test_only_the_scheme_of_a_url_is_rewritten() -> None:
    url = "postgres://postgres:postgres://@localhost/postgres"

    assert Settings(database_url=url).database_url == (
        "postgresql+psycopg://postgres:postgres://@localhost/postgres"
    )


def test_a_url_from_the_environment_is_normalized_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHONEFLEET_DATABASE_URL", "postgres://fleet@db/phonefleet")

    assert Settings().database_url == "postgresql+psycopg://fleet@db/phonefleet"


def test_no_database_url_stays_unset() -> None:
    assert Settings().database_url is None


def test_running_without_database_and_redis_urls_is_refused() -> None:
    with pytest.raises(RuntimeError, match="PHONEFLEET_DATABASE_URL"):
        Settings(redis_url="redis://localhost:6379/0").require_urls()


def test_both_urls_are_handed_out_once_set() -> None:
    settings = Settings(database_url="postgresql://db/x", redis_url="redis://localhost:6379/0")

    assert settings.require_urls() == ("postgresql+psycopg://db/x", "redis://localhost:6379/0")


def test_a_password_file_fills_the_url_in_when_connecting(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("s3cr:t/@%\n")
    (tmp_path / "redis").write_text("r3dis\n")
    settings = Settings(
        database_url="postgresql://fleet@db.internal:5432/phonefleet?sslmode=require",
        database_password_file=tmp_path / "db",
        redis_url="redis://cache:6379/0",
        redis_password_file=str(tmp_path / "redis"),
    )

    database, redis = settings.require_urls()

    assert database == (
        "postgresql+psycopg://fleet:s3cr%3At%2F%40%25@db.internal:5432/phonefleet?sslmode=require"
    )
    assert urlsplit(database).password is not None
    assert unquote(urlsplit(database).password or "") == "s3cr:t/@%"
    assert redis == "redis://:r3dis@cache:6379/0"


def test_what_workers_are_given_names_the_file_not_the_password(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("hunter2\n")
    settings = Settings(
        database_url="postgresql://fleet@db/phonefleet",
        database_password_file=tmp_path / "db",
        redis_url="redis://cache/0",
    )

    given = settings.for_workers()

    assert "hunter2" not in str(given)
    assert given["database_password_file"] == str(tmp_path / "db")
    rebuilt = Settings(**given)  # as an actor or a replica does
    assert rebuilt.require_urls()[0] == "postgresql+psycopg://fleet:hunter2@db/phonefleet"


def test_a_password_file_replaces_a_password_in_the_url(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("new\n")

    assert with_password_from("postgresql://u%40x:old@h/d", tmp_path / "db") == (
        "postgresql://u%40x:new@h/d"
    )


def test_an_unreadable_password_file_says_which(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("")
    for path in (tmp_path / "missing", tmp_path / "empty"):
        settings = Settings(
            database_url="postgresql://db/x", redis_url="redis://r", database_password_file=path
        )
        with pytest.raises(RuntimeError, match=str(path)):
            settings.require_urls()


@pytest.mark.parametrize("given", ["", "  "])
def test_an_empty_password_file_setting_is_no_file(given: str) -> None:
    assert Settings(database_password_file=given).database_password_file is None


def test_a_password_file_under_home_is_expanded() -> None:
    settings = Settings(database_password_file="~/secrets/db")

    assert settings.database_password_file == Path.home() / "secrets" / "db"


def test_has_password() -> None:
    assert has_password("postgresql://u:p@h/d")
    assert not has_password("postgresql://u@h/d")
    assert not has_password("redis://h:6379/0")


def test_no_secret_is_a_worker_argument() -> None:
    from scheduler.cli.bring_up import app_args

    settings = Settings(
        database_url="postgresql://db/x",
        redis_url="redis://r",
        admin_token="pf_admin",
        jwt_secret="platform-secret",
        trusted_proxy_secret="gateway-secret",
    )

    for arguments in (settings.for_workers(), app_args(settings)):
        for secret in ("pf_admin", "platform-secret", "gateway-secret"):
            assert secret not in repr(arguments)
