from __future__ import annotations

import os

import pytest

from scheduler.config import Settings


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
