"""Errors cross Ray actor boundaries by pickling, so every one must round-trip intact."""

from __future__ import annotations

import pickle
import re

import pytest

from scheduler.domain import errors
from scheduler.domain.errors import SchedulerError


def all_error_classes() -> list[type[SchedulerError]]:
    """``SchedulerError`` and every subclass of it, however deep."""
    found: list[type[SchedulerError]] = []
    pending = [SchedulerError]
    while pending:
        cls = pending.pop()
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.__qualname__)


ERROR_CLASSES = all_error_classes()


def by_name(classes: list[type[SchedulerError]]) -> list[str]:
    return [c.__name__ for c in classes]


def test_discovery_finds_every_error_the_domain_module_defines() -> None:
    defined = {
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, SchedulerError)
    }

    assert defined <= set(ERROR_CLASSES)
    assert len(ERROR_CLASSES) >= 18


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=by_name(ERROR_CLASSES))
def test_an_error_with_a_detail_survives_pickling(cls: type[SchedulerError]) -> None:
    original = cls("device 7 is on fire")

    restored = pickle.loads(pickle.dumps(original))

    assert type(restored) is cls
    assert restored.detail == "device 7 is on fire"
    assert restored.code == original.code
    assert str(restored) == str(original)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=by_name(ERROR_CLASSES))
def test_an_error_with_its_default_detail_survives_pickling(cls: type[SchedulerError]) -> None:
    original = cls()

    restored = pickle.loads(pickle.dumps(original))

    assert type(restored) is cls
    assert restored.detail == original.detail
    assert restored.code == original.code


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=by_name(ERROR_CLASSES))
def test_an_error_survives_pickling_with_every_protocol(cls: type[SchedulerError]) -> None:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        restored = pickle.loads(pickle.dumps(cls("why"), protocol=protocol))

        assert (type(restored), restored.detail, restored.code) == (cls, "why", cls.code)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=by_name(ERROR_CLASSES))
def test_an_error_without_a_detail_explains_itself_with_its_docstring(
    cls: type[SchedulerError],
) -> None:
    assert cls().detail == (cls.__doc__ or "").strip()
    assert cls().detail


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=by_name(ERROR_CLASSES))
def test_an_error_code_is_snake_case(cls: type[SchedulerError]) -> None:
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", cls.code)


def test_every_error_has_its_own_code() -> None:
    codes = [cls.code for cls in ERROR_CLASSES]

    assert len(set(codes)) == len(codes), sorted(codes)
