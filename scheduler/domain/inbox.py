"""What the platform's messages mean to PhoneFleet (issue 12 §3): each routing key it consumes
(both spellings where the platform has two), read into the action it asks for. A pure
function of the key and the body; a body that cannot mean anything is a poison message
(``InvalidRequest``), never retried into success.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scheduler.domain.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class SuspendUser:
    """End the user's leases, cancel its waits and bookings, revoke its tokens, refuse it."""

    user_id: str
    cause: str  # "suspended" | "deleted" | "billing"
    reason: str


@dataclass(frozen=True, slots=True)
class ReinstateUser:
    user_id: str


@dataclass(frozen=True, slots=True)
class DeviceTrouble:
    """The platform says a device failed or went away (``failed``), or works again."""

    device_id: uuid.UUID
    failed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class LimitUser:
    """The user may hold at most ``max_devices`` devices; leases above it end after a grace,
    oldest first."""

    user_id: str
    max_devices: int


@dataclass(frozen=True, slots=True)
class LimitTenant:
    """The tenant (the platform's name for it) may hold at most ``max_devices`` devices;
    its leases above it end after a grace, oldest first."""

    tenant: str
    max_devices: int


@dataclass(frozen=True, slots=True)
class Payer:
    """Whom a billing message is about: a user, or a whole tenant (the platform's name)."""

    user_id: str = ""
    tenant: str = ""


@dataclass(frozen=True, slots=True)
class BillingTrouble:
    """Overdue (``overdue``: a suspension is due after a grace) or a failed payment (counted;
    a suspension is due once they reach a threshold)."""

    payer: Payer
    overdue: bool
    reason: str


@dataclass(frozen=True, slots=True)
class BillingSettled:
    """A payment came in: no suspension is due, failures are forgotten, and a user or tenant
    suspended for billing is reinstated."""

    payer: Payer


@dataclass(frozen=True, slots=True)
class NothingToDo:
    """A message understood that asks for nothing (a device status PhoneFleet ignores)."""

    why: str


InboundAction = (
    SuspendUser
    | ReinstateUser
    | DeviceTrouble
    | LimitUser
    | LimitTenant
    | BillingTrouble
    | BillingSettled
    | NothingToDo
)

#: Device statuses the platform's device service reports that take a device out of service,
#: and those that bring it back.
FAILED_STATUSES = frozenset({"error", "failed", "deleted", "stopped", "offline", "crashed"})
WORKING_STATUSES = frozenset({"running", "online", "available", "idle"})

USER_KEYS = ("user.deleted", "user.suspended", "user.activated")
DEVICE_KEYS = ("device.failed", "device.deleted", "device.status_changed", "device.maintenance")
#: Both spellings where the platform has two.
QUOTA_KEYS = ("user.quota_updated", "quota.updated", "user.quota_exceeded", "quota.exceeded")
BILLING_KEYS = (
    "billing.overdue",
    "billing.invoice_overdue",
    "billing.payment_failed",
    "billing.payment_success",
    "billing.recharged",
    "billing.balance_low",
    "billing.low_balance",
)
#: Every routing key the inbox binds.
ROUTING_KEYS = USER_KEYS + DEVICE_KEYS + QUOTA_KEYS + BILLING_KEYS
#: ``quotaType`` values of ``quota.exceeded`` that are about devices held at once.
DEVICE_QUOTA_TYPES = frozenset({"devices", "device", "maxdevices", "max_devices", "concurrent"})


def _text(body: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip() or len(value) > 500 or "\x00" in value:
        raise InvalidRequest(f"{name} must be a non-empty string of at most 500 characters")
    return value


def _device(body: Mapping[str, Any]) -> uuid.UUID:
    try:
        return uuid.UUID(_text(body, "deviceId"))
    except ValueError:
        raise InvalidRequest("deviceId must be a device id (a UUID)") from None


def read_message(routing_key: str, body: Any) -> InboundAction:
    """The action ``body`` (the message's JSON) under ``routing_key`` asks for.

    Raises:
        InvalidRequest: an unknown key, or a body without what the key needs.
    """
    if not isinstance(body, Mapping):
        raise InvalidRequest("a message body is a JSON object")
    if routing_key in ("user.deleted", "user.suspended"):
        cause = routing_key.removeprefix("user.")
        reason = _text(body, "reason", required=False) or f"user {cause} by the platform"
        return SuspendUser(_text(body, "userId"), cause, reason)
    if routing_key == "user.activated":
        return ReinstateUser(_text(body, "userId"))
    if routing_key in ("device.failed", "device.deleted"):
        reason = _text(body, "reason", required=False) or routing_key.replace(".", " ")
        return DeviceTrouble(_device(body), True, reason)
    if routing_key == "device.maintenance":
        kind = _text(body, "maintenanceType", required=False) or "maintenance"
        return DeviceTrouble(_device(body), True, f"platform maintenance: {kind}")
    if routing_key == "device.status_changed":
        device, status = _device(body), _text(body, "newStatus").lower()
        if status in FAILED_STATUSES:
            return DeviceTrouble(device, True, f"platform status {status}")
        if status in WORKING_STATUSES:
            return DeviceTrouble(device, False, f"platform status {status}")
        return NothingToDo(f"device status {status!r} changes nothing here")
    if routing_key in QUOTA_KEYS:
        return _quota(routing_key, body)
    if routing_key in BILLING_KEYS:
        return _billing(routing_key, body)
    raise InvalidRequest(f"the inbox does not handle {routing_key!r}")


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise InvalidRequest(f"{name} must be a whole number")
    if not 0 <= value <= 1_000_000:
        raise InvalidRequest(f"{name} must be between 0 and 1000000")
    return int(value)


def _payer(body: Mapping[str, Any]) -> Payer:
    """The user a message names, else the tenant it names.

    Raises:
        InvalidRequest: it names neither.
    """
    if body.get("userId") is not None or body.get("tenantId") is None:
        return Payer(user_id=_text(body, "userId"))
    return Payer(tenant=_text(body, "tenantId"))


def _limit(payer: Payer, max_devices: int) -> InboundAction:
    if payer.user_id:
        return LimitUser(payer.user_id, max_devices)
    return LimitTenant(payer.tenant, max_devices)


def _quota(routing_key: str, body: Mapping[str, Any]) -> InboundAction:
    payer = _payer(body)
    if routing_key.endswith("updated"):
        quota = body.get("newQuota")
        if isinstance(quota, Mapping) and "maxDevices" in quota:
            return _limit(payer, _count(quota["maxDevices"], "newQuota.maxDevices"))
        if "maxDevices" in body:
            return _limit(payer, _count(body["maxDevices"], "maxDevices"))
        return NothingToDo("the new quota sets no device limit")
    kind = str(body.get("quotaType", "devices")).lower()
    if kind not in DEVICE_QUOTA_TYPES:
        return NothingToDo(f"quota {kind!r} is not about devices")
    return _limit(payer, _count(body.get("limit"), "limit"))


def _billing(routing_key: str, body: Mapping[str, Any]) -> InboundAction:
    payer = _payer(body)
    if routing_key in ("billing.overdue", "billing.invoice_overdue"):
        days = body.get("overdueDays")
        reason = f"billing overdue ({days} days)" if days is not None else "billing overdue"
        return BillingTrouble(payer, True, reason)
    if routing_key == "billing.payment_failed":
        why = _text(body, "reason", required=False) or "payment failed"
        return BillingTrouble(payer, False, f"payment failed: {why}")
    if routing_key in ("billing.payment_success", "billing.recharged"):
        return BillingSettled(payer)
    return NothingToDo("a low balance is the platform's notice to send")


def message_id_of(given: str | None, routing_key: str, body: bytes) -> str:
    """The message's own id, else a hash of its key and content (a redelivered message
    without an id is still recognised)."""
    if given:
        return given[:200]
    digest = hashlib.sha256(routing_key.encode() + b"\x00" + body).hexdigest()
    return f"sha256:{digest}"


def decode_body(body: bytes) -> Any:
    """Raises:
    InvalidRequest: the body is not JSON.
    """
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("a message body is JSON") from None
