"""What a fleet can hold: the bounds of every number, label and text a request may carry.

The API refuses anything beyond them (422), and the queue checks stored entries against
them again before it plans, so a value that slipped past once cannot stop a drain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

#: One phone: the largest a single device (a container or VM on one host) can be.
MAX_DEVICE_CPU_CORES = 1024
MAX_DEVICE_MEMORY_MB = 16_777_216  # 16 TiB
MAX_DEVICE_STORAGE_MB = 1_073_741_824  # 1 PiB
#: One host node: its device slots.
MAX_NODE_DEVICES = 10_000
#: A whole fleet: what a tenant's quota can usefully be.
MAX_FLEET_DEVICES = 1_000_000
MAX_FLEET_CPU_CORES = MAX_FLEET_DEVICES * MAX_DEVICE_CPU_CORES
MAX_FLEET_MEMORY_MB = MAX_FLEET_DEVICES * MAX_DEVICE_MEMORY_MB
MAX_FLEET_STORAGE_MB = MAX_FLEET_DEVICES * MAX_DEVICE_STORAGE_MB

#: Labels, as Kubernetes bounds them: keys of at most 63 characters, values of at most 253.
MAX_LABELS = 64
MAX_LABEL_KEY = 63
MAX_LABEL_VALUE = 253
MAX_ANDROID_VERSION = 16


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (PostgreSQL refuses NUL characters)."""
    return "NUL characters are not allowed" if "\x00" in value else None


def labels_problem(labels: Mapping[str, str]) -> str | None:
    """Why ``labels`` are out of bounds, or ``None``."""
    if len(labels) > MAX_LABELS:
        return f"at most {MAX_LABELS} labels"
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            return "label keys and values must be strings"
        if not 0 < len(key) <= MAX_LABEL_KEY:
            return f"label keys must be 1 to {MAX_LABEL_KEY} characters"
        if len(value) > MAX_LABEL_VALUE:
            return f"label values must be at most {MAX_LABEL_VALUE} characters"
        if text_problem(key) or text_problem(value):
            return "labels must not contain NUL characters"
    return None


def number_problem(name: str, value: object, maximum: int) -> str | None:
    """Why ``value`` is not a finite number in ``[0, maximum]``, or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be finite"
    if not 0 <= value <= maximum:
        return f"{name} must be between 0 and {maximum}"
    return None
