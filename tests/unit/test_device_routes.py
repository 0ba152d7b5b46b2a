from __future__ import annotations

import pytest

from scheduler.domain.errors import InvalidRequest
from serve.routes.devices import parse_labels


def test_no_label_filters_parse_to_no_labels() -> None:
    assert parse_labels([]) == {}


def test_key_value_label_filters_parse_to_a_mapping() -> None:
    assert parse_labels(["pool:ci", "zone:eu-west"]) == {"pool": "ci", "zone": "eu-west"}


def test_a_label_value_may_itself_contain_colons() -> None:
    assert parse_labels(["url:http://x:80"]) == {"url": "http://x:80"}


def test_a_label_filter_may_ask_for_an_empty_value() -> None:
    assert parse_labels(["pool:"]) == {"pool": ""}


def test_a_repeated_label_key_keeps_its_last_value() -> None:
    assert parse_labels(["pool:a", "pool:b"]) == {"pool": "b"}


@pytest.mark.parametrize("bad", ["novalue", ":ci", ""])
def test_a_label_filter_that_is_not_key_colon_value_is_an_invalid_request(bad: str) -> None:
    with pytest.raises(InvalidRequest, match="must be key:value"):
        parse_labels(["pool:ci", bad])
