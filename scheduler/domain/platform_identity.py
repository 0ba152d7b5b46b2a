"""Who a caller of the platform is: its JWT's claims, or the headers its gateway adds.

The platform (../shared/notes/platform-contract.md) signs a JWT at login with ``sub`` (the
user), ``tenantId``, ``roles`` and ``isSuperAdmin``; its gateway forwards it and adds
``x-user-id``, ``x-user-tenant`` and ``x-user-roles`` (base64 of the JSON roles array). A
platform tenant is the PhoneFleet tenant of the same name.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scheduler.domain.errors import Unauthenticated
from scheduler.domain.identity import Role

#: Rate-limit buckets of platform users are keyed by a token id derived from who they are.
PLATFORM_USERS = uuid.UUID("7d0c5a39-94c5-4c47-9b0f-3f1f1b9a2c11")
#: Longest user and tenant ids taken from a caller (PhoneFleet's own limits on names).
MAX_ID_LENGTH = 200


@dataclass(frozen=True, slots=True)
class PlatformUser:
    user_id: str
    tenant: str  # the platform's tenantId: a PhoneFleet tenant's name
    roles: frozenset[str]
    super_admin: bool = False
    expires_at: datetime | None = None

    def role(self, admin_roles: Collection[str]) -> Role:
        """Admin when a super admin or holding one of ``admin_roles``; else a user."""
        if self.super_admin or not self.roles.isdisjoint(admin_roles):
            return Role.ADMIN
        return Role.USER

    @property
    def token_id(self) -> uuid.UUID:
        """Stands for the user's token in rate limits: one bucket per user, not per address."""
        return uuid.uuid5(PLATFORM_USERS, f"{self.tenant}\x00{self.user_id}")


def admin_roles_of(setting: str) -> frozenset[str]:
    """``PHONEFLEET_JWT_ADMIN_ROLES``: comma-separated role names."""
    return frozenset(r.strip() for r in setting.split(",") if r.strip())


def user_from_claims(claims: Mapping[str, Any]) -> PlatformUser:
    """Raises:
    Unauthenticated: ``sub`` or ``tenantId`` is missing or not a string.
    """
    roles = claims.get("roles") or ()
    if not isinstance(roles, list | tuple) or not all(isinstance(r, str) for r in roles):
        raise Unauthenticated("the JWT's roles must be a list of role names")
    expiry = claims.get("exp")
    return PlatformUser(
        _id(claims.get("sub"), "sub"),
        _id(claims.get("tenantId"), "tenantId"),
        frozenset(roles),
        claims.get("isSuperAdmin") is True,
        datetime.fromtimestamp(expiry, UTC) if isinstance(expiry, int | float) else None,
    )


def user_from_gateway(headers: Mapping[str, str]) -> PlatformUser:
    """The user the gateway's ``x-user-*`` headers name (only ever read from a request that
    proved it came through the gateway).

    Raises:
        Unauthenticated: ``x-user-id`` or ``x-user-tenant`` is missing, or ``x-user-roles``
        is not base64 of a JSON array of role names.
    """
    roles: object = []
    if encoded := headers.get("x-user-roles"):
        try:
            roles = json.loads(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise Unauthenticated("x-user-roles must be base64 of a JSON array") from None
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthenticated("x-user-roles must be base64 of a JSON array of role names")
    return PlatformUser(
        _id(headers.get("x-user-id"), "x-user-id"),
        _id(headers.get("x-user-tenant"), "x-user-tenant"),
        frozenset(roles),
    )


def _id(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise Unauthenticated(f"the caller's {name} is missing or not a valid id")
    return value.strip()
