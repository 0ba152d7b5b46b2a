"""SQL repositories of tenants (with their quota), API tokens and idempotency keys."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from scheduler.adapters.db_errors import translate_db_errors
from scheduler.adapters.sql_base import Row, SqlRepository
from scheduler.domain.identity import Credential, Principal, Role, TokenInfo
from scheduler.domain.rate_limits import RateLimit
from scheduler.domain.resources import Resources
from scheduler.domain.tenants import Tenant
from scheduler.services.ports import StoredOutcome

#: ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: it does not conflict with the key-share locks
#: that foreign-key checks take (a release inserting its usage record), so an allocate that
#: holds the tenant never waits on a release, and the two cannot deadlock.
READ_TENANT = "SELECT * FROM tenants WHERE id = %(id)s"
LOCK_TENANT = READ_TENANT + " FOR NO KEY UPDATE"
KEY_WHERE = "tenant_id = %(tenant_id)s AND principal_user_id = %(user_id)s AND key = %(key)s"
CLAIM_KEY = (
    "INSERT INTO idempotency_keys (tenant_id, principal_user_id, key, operation, request_hash,"
    " created_at) VALUES (%(tenant_id)s, %(user_id)s, %(key)s, %(operation)s, %(hash)s,"
    " %(now)s) ON CONFLICT ON CONSTRAINT idempotency_keys_once_v1 DO NOTHING RETURNING key"
)


def _key_params(
    principal: Principal, key: str, operation: str, request_hash: str, now: datetime
) -> dict[str, Any]:
    return {
        "tenant_id": principal.tenant_id,
        "user_id": principal.user_id,
        "key": key,
        "operation": operation,
        "hash": request_hash,
        "now": now,
    }


def tenant_from_row(row: Row) -> Tenant:
    return Tenant(
        id=row["id"],
        name=row["name"],
        tier=row["tier"],
        max_devices=row["max_devices"],
        quota=Resources(row["max_cpu_cores"], row["max_memory_mb"], row["max_storage_mb"]),
        used_devices=row["used_devices"],
        used=Resources(row["used_cpu_cores"], row["used_memory_mb"], row["used_storage_mb"]),
        created_at=row["created_at"],
        max_extensions=row["max_extensions"],
        max_lease_minutes=row["max_lease_minutes"],
        rate_limit=_rate_limit(row),
    )


def _rate_limit(row: Row) -> RateLimit | None:
    if row.get("rate_limit_rps") is None:
        return None
    return RateLimit(row["rate_limit_rps"], row["rate_limit_burst"])


class SqlTenantRepository(SqlRepository):
    async def add(self, tenant: Tenant) -> None:
        await self._send(
            "INSERT INTO tenants (id, name, tier, max_devices, max_cpu_cores, max_memory_mb,"
            " max_storage_mb, created_at) VALUES (%(id)s, %(name)s, %(tier)s, %(max_devices)s,"
            " %(cpu)s, %(mem)s, %(sto)s, %(at)s)",
            {
                "id": tenant.id,
                "name": tenant.name,
                "tier": tenant.tier,
                "max_devices": tenant.max_devices,
                "cpu": tenant.quota.cpu_cores,
                "mem": tenant.quota.memory_mb,
                "sto": tenant.quota.storage_mb,
                "at": tenant.created_at,
            },
        )

    async def get(self, tenant_id: uuid.UUID) -> Tenant | None:
        row = await self._row("SELECT * FROM tenants WHERE id = %(id)s", {"id": tenant_id})
        return tenant_from_row(row) if row else None

    async def lock(self, tenant_id: uuid.UUID) -> Tenant | None:
        row = await self._row(LOCK_TENANT, {"id": tenant_id})
        return tenant_from_row(row) if row else None

    async def get_by_name(self, name: str) -> Tenant | None:
        row = await self._row("SELECT * FROM tenants WHERE name = %(name)s", {"name": name})
        return tenant_from_row(row) if row else None

    async def list(self) -> list[Tenant]:
        return [tenant_from_row(r) for r in await self._rows("SELECT * FROM tenants ORDER BY name")]

    async def update(
        self,
        tenant_id: uuid.UUID,
        tier: str | None,
        max_devices: int | None,
        quota: Resources | None,
        max_extensions: int | None = None,
        max_lease_minutes: int | None = None,
        rate_limit: RateLimit | None = None,
    ) -> Tenant | None:
        """Change the tier and/or the quota; a quota below current usage is refused by
        ``tenants_usage_within_quota_v1``."""
        row = await self._row(
            "UPDATE tenants SET tier = coalesce(%(tier)s, tier),"
            " max_devices = coalesce(%(max_devices)s, max_devices),"
            " max_cpu_cores = coalesce(%(cpu)s, max_cpu_cores),"
            " max_memory_mb = coalesce(%(mem)s, max_memory_mb),"
            " max_storage_mb = coalesce(%(sto)s, max_storage_mb),"
            " max_extensions = coalesce(%(max_extensions)s, max_extensions),"
            " max_lease_minutes = coalesce(%(max_lease_minutes)s, max_lease_minutes),"
            " rate_limit_rps = coalesce(%(rps)s, rate_limit_rps),"
            " rate_limit_burst = coalesce(%(burst)s, rate_limit_burst)"
            " WHERE id = %(id)s RETURNING *",
            {
                "id": tenant_id,
                "tier": tier,
                "max_devices": max_devices,
                "cpu": quota.cpu_cores if quota else None,
                "mem": quota.memory_mb if quota else None,
                "sto": quota.storage_mb if quota else None,
                "max_extensions": max_extensions,
                "max_lease_minutes": max_lease_minutes,
                "rps": rate_limit.requests_per_second if rate_limit else None,
                "burst": rate_limit.burst if rate_limit else None,
            },
        )
        return tenant_from_row(row) if row else None

    async def with_devices_left(self, tenant_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these tenants may still lease a device."""
        rows = await self._rows(
            "SELECT id FROM tenants WHERE id = ANY(%(ids)s) AND used_devices < max_devices",
            {"ids": list(tenant_ids)},
        )
        return {r["id"] for r in rows}

    async def refund(self, tenant_id: uuid.UUID, resources: Resources) -> None:
        await self._send(
            "UPDATE tenants SET used_devices = used_devices - 1,"
            " used_cpu_cores = greatest(used_cpu_cores - %(cpu)s, 0),"
            " used_memory_mb = used_memory_mb - %(mem)s,"
            " used_storage_mb = used_storage_mb - %(sto)s WHERE id = %(id)s",
            {
                "id": tenant_id,
                "cpu": resources.cpu_cores,
                "mem": resources.memory_mb,
                "sto": resources.storage_mb,
            },
        )


TOKEN_COLUMNS = "id, tenant_id, user_id, role, created_at, expires_at, revoked_at"


def token_from_row(row: Row) -> TokenInfo:
    return TokenInfo(
        row["id"],
        row["tenant_id"],
        row["user_id"],
        Role(row["role"]),
        row["created_at"],
        row["expires_at"],
        row["revoked_at"],
    )


class SqlTokenRepository(SqlRepository):
    async def add(
        self,
        token_id: uuid.UUID,
        token_hash: bytes,
        tenant_id: uuid.UUID,
        user_id: str,
        role: Role,
        now: datetime,
        *,
        expires_at: datetime | None = None,
        bootstrap: bool = False,
    ) -> None:
        await self._send(
            "INSERT INTO api_tokens (id, token_hash, tenant_id, user_id, role, created_at,"
            " expires_at, purpose) VALUES (%(id)s, %(hash)s, %(tenant_id)s, %(user_id)s,"
            " %(role)s, %(now)s, %(expires_at)s, %(purpose)s)",
            {
                "id": token_id,
                "hash": token_hash,
                "tenant_id": tenant_id,
                "user_id": user_id,
                "role": role.value,
                "now": now,
                "expires_at": expires_at,
                "purpose": "bootstrap" if bootstrap else "api",
            },
        )

    async def credential_for(self, token_hash: bytes) -> Credential | None:
        """The live (not revoked) token with this hash, with its tenant's rate limit."""
        row = await self._row(
            "SELECT k.id, k.tenant_id, k.user_id, k.role, k.expires_at, t.rate_limit_rps,"
            " t.rate_limit_burst FROM api_tokens k JOIN tenants t ON t.id = k.tenant_id"
            " WHERE k.token_hash = %(hash)s AND k.revoked_at IS NULL",
            {"hash": token_hash},
        )
        if row is None:
            return None
        principal = Principal(row["tenant_id"], row["user_id"], Role(row["role"]))
        return Credential(principal, row["id"], row["expires_at"], _rate_limit(row))

    async def list(self, tenant_id: uuid.UUID | None) -> list[TokenInfo]:
        rows = await self._rows(
            f"SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE purpose = 'api'"
            " AND (%(tenant)s::uuid IS NULL OR tenant_id = %(tenant)s)"
            " ORDER BY created_at DESC LIMIT 1000",
            {"tenant": tenant_id},
        )
        return [token_from_row(r) for r in rows]

    async def revoke_user(self, user_id: str, now: datetime) -> int:
        """Revoke every live API token of the user, in every tenant; how many."""
        rows = await self._rows(
            "UPDATE api_tokens SET revoked_at = %(now)s WHERE user_id = %(user)s"
            " AND purpose = 'api' AND revoked_at IS NULL RETURNING id",
            {"user": user_id, "now": now},
        )
        return len(rows)

    async def revoke(self, token_id: uuid.UUID, now: datetime) -> TokenInfo | None:
        """Revoke the token (once: a revoked one keeps its first revocation time)."""
        row = await self._row(
            "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, %(now)s)"
            f" WHERE id = %(id)s AND purpose = 'api' RETURNING {TOKEN_COLUMNS}",
            {"id": token_id, "now": now},
        )
        return token_from_row(row) if row else None

    async def reinstate_bootstrap(self, token_hash: bytes) -> bool:
        """Make a revoked bootstrap admin token valid again (an operator rotating back to
        it); whether there was one."""
        rows = await self._rows(
            "UPDATE api_tokens SET revoked_at = NULL, expires_at = NULL"
            " WHERE token_hash = %(hash)s AND purpose = 'bootstrap' RETURNING id",
            {"hash": token_hash},
        )
        return bool(rows)

    async def revoke_bootstrap_except(self, token_hash: bytes, now: datetime) -> int:
        """Revoke every bootstrap admin token but this one (a rotated admin token)."""
        rows = await self._rows(
            "UPDATE api_tokens SET revoked_at = %(now)s WHERE purpose = 'bootstrap'"
            " AND revoked_at IS NULL AND token_hash <> %(hash)s RETURNING id",
            {"hash": token_hash, "now": now},
        )
        return len(rows)


class SqlIdempotencyRepository(SqlRepository):
    async def claim_sent(
        self, principal: Principal, key: str, operation: str, request_hash: str, now: datetime
    ) -> Callable[[], Awaitable[bool]]:
        """Send the key's claim without waiting: it goes with the transaction's next read.
        The call returned says whether this transaction claimed the key (else a first
        request holds it, and its outcome was committed: the claim waited for it)."""
        with translate_db_errors():
            cursor = await self._connection.execute(
                CLAIM_KEY, _key_params(principal, key, operation, request_hash, now)
            )

        answers: list[bool] = []

        async def claimed() -> bool:
            if not answers:
                with translate_db_errors():
                    answers.append(await cursor.fetchone() is not None)
            return answers[0]

        return claimed

    async def claim(
        self, principal: Principal, key: str, operation: str, request_hash: str, now: datetime
    ) -> StoredOutcome | None:
        """Insert the key in this transaction; ``None`` when this call claimed it. A first
        request whose claim is not committed yet makes this wait for its end: its committed
        outcome comes back, or, when it rolled back, this call claims the key."""
        params = _key_params(principal, key, operation, request_hash, now)
        if await self._row(CLAIM_KEY, params) is not None:
            return None
        row = await self._row(
            f"SELECT operation, request_hash, outcome FROM idempotency_keys WHERE {KEY_WHERE}",
            params,
        )
        if row is None:  # pruned between the insert and the read: claim it again
            return await self.claim(principal, key, operation, request_hash, now)
        return StoredOutcome(row["operation"], row["request_hash"], row["outcome"])

    async def store(self, principal: Principal, key: str, outcome: dict[str, Any]) -> None:
        await self._send(
            f"UPDATE idempotency_keys SET outcome = %(outcome)s WHERE {KEY_WHERE}",
            {
                "tenant_id": principal.tenant_id,
                "user_id": principal.user_id,
                "key": key,
                "outcome": Jsonb(outcome),
            },
        )

    async def store_for_granted(
        self,
        principal: Principal,
        key: str,
        lease_id: uuid.UUID,
        outcomes_by_device: Mapping[uuid.UUID, dict[str, Any]],
    ) -> None:
        """Store the outcome listed under the device the lease ``lease_id`` got (a grant this
        transaction sent before)."""
        await self._send(
            "UPDATE idempotency_keys k SET outcome = o.outcome FROM unnest(%(devices)s::uuid[],"
            " %(outcomes)s::jsonb[]) AS o(device_id, outcome) JOIN allocations a"
            " ON a.device_id = o.device_id AND a.id = %(lease)s WHERE k.tenant_id = %(tenant_id)s"
            " AND k.principal_user_id = %(user_id)s AND k.key = %(key)s",
            {
                "tenant_id": principal.tenant_id,
                "user_id": principal.user_id,
                "key": key,
                "lease": lease_id,
                "devices": list(outcomes_by_device),
                "outcomes": [Jsonb(o) for o in outcomes_by_device.values()],
            },
        )

    async def prune(self, before: datetime) -> int:
        """Forget keys claimed before ``before`` (retries are expected within hours)."""
        rows = await self._rows(
            "DELETE FROM idempotency_keys WHERE created_at < %(before)s RETURNING key",
            {"before": before},
        )
        return len(rows)
