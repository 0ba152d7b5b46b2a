"""Who is calling, and what they may see and act on.

Roles: ``admin`` sees every tenant, ``service`` acts for any user of its tenant and must name
the user, ``user`` acts as itself only. Tenant and user always come from the token.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from scheduler.domain.errors import Forbidden, InvalidRequest
from scheduler.domain.rate_limits import RateLimit


class Role(StrEnum):
    ADMIN = "admin"
    SERVICE = "service"
    USER = "user"


TOKEN_PREFIX = "pf_"


@dataclass(frozen=True, slots=True)
class Principal:
    """The identity a bearer token stands for."""

    tenant_id: uuid.UUID
    user_id: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class Credential:
    """What a bearer token resolves to: who it speaks for, which token it is, until when it
    is valid, and its tenant's rate limit (``None``: the default)."""

    principal: Principal
    token_id: uuid.UUID
    expires_at: datetime | None = None
    rate_limit: RateLimit | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as admins see it: never its secret."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: str
    role: Role
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


#: The scheduler itself, as the actor of its own jobs (expiry, timeouts, bookings).
SYSTEM = Principal(uuid.UUID(int=0), "system", Role.ADMIN)


@dataclass(frozen=True, slots=True)
class Scope:
    """Rows a principal may see: ``None`` means no restriction on that column."""

    tenant_id: uuid.UUID | None
    user_id: str | None


def scope_of(principal: Principal) -> Scope:
    """Admins see all, services their tenant, users their own rows."""
    if principal.role is Role.ADMIN:
        return Scope(None, None)
    if principal.role is Role.SERVICE:
        return Scope(principal.tenant_id, None)
    return Scope(principal.tenant_id, principal.user_id)


def acting_user(principal: Principal, requested_user_id: str | None) -> str:
    """The user a request acts for.

    Raises:
        InvalidRequest: a service token did not name the user.
        Forbidden: a user token named somebody else.
    """
    if principal.role is Role.USER:
        if requested_user_id not in (None, principal.user_id):
            raise Forbidden("a user token may only act for its own user")
        return principal.user_id
    if principal.role is Role.SERVICE and not requested_user_id:
        raise InvalidRequest("a service token must name the userId it acts for")
    return requested_user_id or principal.user_id


def require_admin(principal: Principal) -> None:
    """Raises:
    Forbidden: the principal is not an admin.
    """
    if not principal.is_admin:
        raise Forbidden("this operation needs an admin token")


def new_token() -> str:
    """A fresh bearer token; only its hash is ever stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
