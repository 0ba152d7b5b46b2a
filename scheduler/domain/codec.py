"""The one serializer of values that leave a process as JSON: stored command results and
outbox event payloads.

Frozen dataclasses of plain values (numbers, strings, ids, instants, enums, tuples, lists,
maps and other such dataclasses) round-trip exactly: ``load(T, dump(x)) == x``. Scheduler
errors inside a result (a batch item's refusal) round-trip by class name and arguments.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import types
import typing
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from scheduler.domain.errors import SchedulerError

T = TypeVar("T")


def dump(value: Any) -> Any:
    """``value`` as JSON-ready data.

    Raises:
        TypeError: a value the codec does not know.
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, SchedulerError):
        return {"error": type(value).__name__, "args": dump(list(value.__reduce__()[1]))}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): dump(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [dump(v) for v in value]
    raise TypeError(f"cannot serialize {type(value).__name__}")


def load(kind: Any, data: Any) -> Any:
    """The value of type ``kind`` that ``dump`` turned into ``data``.

    Raises:
        TypeError, ValueError: ``data`` is not a dumped ``kind``.
    """
    return _load(kind, data, {})


def _load(kind: Any, data: Any, params: dict[Any, Any]) -> Any:
    if isinstance(kind, TypeVar):
        return _load(params.get(kind, Any), data, params)
    if kind is Any or kind is typing.Hashable:
        return data
    origin, args = get_origin(kind), get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options[:-1]:
            try:
                return _load(option, data, params)
            except (TypeError, ValueError, KeyError):
                continue
        return _load(options[-1], data, params)
    if isinstance(origin, type) and dataclasses.is_dataclass(origin):
        args = tuple(params.get(a, Any) if isinstance(a, TypeVar) else a for a in args)
        bound = dict(zip(getattr(origin, "__parameters__", ()), args, strict=True))
        return _dataclass(origin, data, {**params, **bound})
    if origin in (list, typing.Sequence, set, frozenset):
        (item,) = args or (Any,)
        values = [_load(item, v, params) for v in data]
        return values if origin in (list, typing.Sequence) else origin(values)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_load(args[0], v, params) for v in data)
        return tuple(_load(a, v, params) for a, v in zip(args, data, strict=True))
    if origin in (dict, Mapping, typing.Mapping):
        key_kind, value_kind = args or (Any, Any)
        return {_load(key_kind, k, params): _load(value_kind, v, params) for k, v in data.items()}
    if isinstance(kind, type):
        return _plain(kind, data, params)
    raise TypeError(f"cannot load {kind!r}")


def _plain(kind: type, data: Any, params: dict[Any, Any]) -> Any:
    if issubclass(kind, SchedulerError):
        return _error(data)
    if issubclass(kind, Enum):
        return kind(data)
    if kind is bool:
        if not isinstance(data, bool):
            raise TypeError("not a boolean")
        return data
    if kind in (int, float, str):
        if isinstance(data, bool) or not isinstance(data, int | float | str):
            raise TypeError(f"not a {kind.__name__}")
        return kind(data)
    if kind is uuid.UUID:
        return uuid.UUID(data)
    if kind is datetime:
        return datetime.fromisoformat(data)
    if kind is timedelta:
        return timedelta(seconds=data)
    if dataclasses.is_dataclass(kind):
        return _dataclass(kind, data, params)
    if kind in (dict, list, tuple):
        return kind(data)
    raise TypeError(f"cannot load {kind.__name__}")


def _dataclass(kind: type, data: Any, params: dict[Any, Any]) -> Any:
    if not isinstance(data, Mapping):
        raise TypeError(f"{kind.__name__} is stored as an object")
    hints = _hints(kind)
    values = {
        f.name: _load(hints[f.name], data[f.name], params)
        for f in dataclasses.fields(kind)
        if f.init and f.name in data
    }
    return kind(**values)


@functools.cache
def _hints(kind: type) -> dict[str, Any]:
    return get_type_hints(kind)


def _error(data: Any) -> SchedulerError:
    cls = _error_classes().get(data["error"])
    if cls is None:
        raise ValueError(f"unknown error {data['error']!r}")
    return cls(*_tuples(data["args"]))


def _tuples(value: Any) -> Any:
    """JSON lists back into the tuples errors carry (``ReservationConflict.conflicts``)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _error_classes() -> dict[str, type[SchedulerError]]:
    """Every scheduler error class by name, however deep (services define some too)."""
    found: dict[str, type[SchedulerError]] = {}
    pending: list[type[SchedulerError]] = [SchedulerError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def union(*kinds: type) -> Any:
    """``A | B | …`` of classes given at run time."""
    return functools.reduce(operator.or_, kinds)
