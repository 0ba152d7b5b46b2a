"""Foundation schema: tenants, tokens, nodes, devices, leases, usage, outbox, idempotency, jobs.

Every invariant the scheduler relies on is a named constraint here; the adapters translate a
violation of each name into a typed domain error.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE tenants (
    id uuid PRIMARY KEY,
    name text NOT NULL CONSTRAINT tenants_name_unique_v1 UNIQUE,
    tier text NOT NULL DEFAULT 'standard',
    max_devices integer NOT NULL,
    max_cpu_cores double precision NOT NULL,
    max_memory_mb bigint NOT NULL,
    max_storage_mb bigint NOT NULL,
    used_devices integer NOT NULL DEFAULT 0,
    used_cpu_cores double precision NOT NULL DEFAULT 0,
    used_memory_mb bigint NOT NULL DEFAULT 0,
    used_storage_mb bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    CONSTRAINT tenants_quota_limits_non_negative_v1 CHECK (
        max_devices >= 0 AND max_cpu_cores >= 0 AND max_memory_mb >= 0 AND max_storage_mb >= 0),
    CONSTRAINT tenants_usage_within_quota_v1 CHECK (
        used_devices <= max_devices AND used_cpu_cores <= max_cpu_cores + 1e-6
        AND used_memory_mb <= max_memory_mb AND used_storage_mb <= max_storage_mb),
    CONSTRAINT tenants_usage_non_negative_v1 CHECK (
        used_devices >= 0 AND used_cpu_cores >= -1e-6 AND used_memory_mb >= 0
        AND used_storage_mb >= 0)
);

CREATE TABLE api_tokens (
    id uuid PRIMARY KEY,
    token_hash bytea NOT NULL CONSTRAINT api_tokens_hash_unique_v1 UNIQUE,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    user_id text NOT NULL,
    role text NOT NULL CONSTRAINT api_tokens_role_known_v1
        CHECK (role IN ('admin', 'service', 'user')),
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE TABLE nodes (
    id uuid PRIMARY KEY,
    name text NOT NULL CONSTRAINT nodes_name_unique_v1 UNIQUE,
    cpu_cores double precision NOT NULL CHECK (cpu_cores > 0),
    memory_mb bigint NOT NULL CHECK (memory_mb > 0),
    storage_mb bigint NOT NULL CHECK (storage_mb > 0),
    max_devices integer NOT NULL CHECK (max_devices > 0),
    labels jsonb NOT NULL DEFAULT '{}',
    taints jsonb NOT NULL DEFAULT '[]',
    status text NOT NULL CONSTRAINT nodes_status_known_v1 CHECK (
        status IN ('ready', 'cordoned', 'draining', 'maintenance', 'offline')),
    host text NOT NULL,
    created_at timestamptz NOT NULL,
    last_heartbeat_at timestamptz
);

CREATE TABLE devices (
    id uuid PRIMARY KEY,
    node_id uuid NOT NULL REFERENCES nodes (id),
    name text NOT NULL CONSTRAINT devices_name_unique_v1 UNIQUE,
    status text NOT NULL CONSTRAINT devices_status_known_v1 CHECK (status IN (
        'provisioning', 'available', 'allocated', 'resetting', 'maintenance', 'failed',
        'retired')),
    cpu_cores double precision NOT NULL CHECK (cpu_cores > 0),
    memory_mb bigint NOT NULL CHECK (memory_mb > 0),
    storage_mb bigint NOT NULL CHECK (storage_mb > 0),
    android_version text NOT NULL,
    labels jsonb NOT NULL DEFAULT '{}',
    adb_host text NOT NULL,
    adb_port integer NOT NULL,
    created_at timestamptz NOT NULL,
    status_changed_at timestamptz NOT NULL,
    CONSTRAINT devices_adb_endpoint_unique_v1 UNIQUE (adb_host, adb_port)
);
CREATE INDEX devices_node_v1 ON devices (node_id);
CREATE INDEX devices_available_v1 ON devices (node_id) WHERE status = 'available';

CREATE TABLE allocations (
    id uuid PRIMARY KEY,
    device_id uuid NOT NULL REFERENCES devices (id),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    user_id text NOT NULL,
    status text NOT NULL CONSTRAINT allocations_status_known_v1
        CHECK (status IN ('active', 'released', 'expired', 'revoked')),
    allocated_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    ended_at timestamptz,
    end_reason text,
    cpu_cores double precision NOT NULL,
    memory_mb bigint NOT NULL,
    storage_mb bigint NOT NULL,
    extension_count integer NOT NULL DEFAULT 0,
    idempotency_key text,
    CONSTRAINT allocations_ended_iff_not_active_v1
        CHECK ((status = 'active') = (ended_at IS NULL)),
    CONSTRAINT allocations_expiry_after_start_v1 CHECK (expires_at > allocated_at)
);
CREATE UNIQUE INDEX allocations_one_active_per_device_v1
    ON allocations (device_id) WHERE status = 'active';
CREATE INDEX allocations_active_expiry_v1 ON allocations (expires_at) WHERE status = 'active';
CREATE INDEX allocations_tenant_user_v1 ON allocations (tenant_id, user_id, allocated_at DESC);
CREATE INDEX allocations_listing_v1 ON allocations (allocated_at DESC, id DESC);

CREATE TABLE usage_records (
    id uuid PRIMARY KEY,
    allocation_id uuid NOT NULL REFERENCES allocations (id)
        CONSTRAINT usage_records_one_per_allocation_v1 UNIQUE,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    user_id text NOT NULL,
    device_id uuid NOT NULL REFERENCES devices (id),
    started_at timestamptz NOT NULL,
    ended_at timestamptz NOT NULL,
    duration_seconds integer NOT NULL CHECK (duration_seconds >= 0),
    cpu_cores double precision NOT NULL,
    memory_mb bigint NOT NULL,
    storage_mb bigint NOT NULL,
    end_reason text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX usage_records_tenant_v1 ON usage_records (tenant_id, ended_at);

CREATE TABLE outbox_events (
    seq bigserial PRIMARY KEY,
    event_id uuid NOT NULL CONSTRAINT outbox_events_id_unique_v1 UNIQUE,
    type text NOT NULL,
    aggregate_id text NOT NULL,
    payload jsonb NOT NULL,
    occurred_at timestamptz NOT NULL,
    relayed_at timestamptz
);
CREATE INDEX outbox_events_unrelayed_v1 ON outbox_events (seq) WHERE relayed_at IS NULL;

CREATE TABLE idempotency_keys (
    tenant_id uuid NOT NULL,
    principal_user_id text NOT NULL,
    key text NOT NULL,
    operation text NOT NULL,
    request_hash text NOT NULL,
    response_status integer,
    response_body jsonb,
    created_at timestamptz NOT NULL,
    CONSTRAINT idempotency_keys_once_v1 PRIMARY KEY (tenant_id, principal_user_id, key)
);

CREATE TABLE job_ticks (
    job text NOT NULL,
    tick bigint NOT NULL,
    owner text NOT NULL,
    ran_at timestamptz NOT NULL,
    CONSTRAINT job_ticks_once_v1 PRIMARY KEY (job, tick)
);
"""

TABLES = (
    "job_ticks",
    "idempotency_keys",
    "outbox_events",
    "usage_records",
    "allocations",
    "devices",
    "nodes",
    "api_tokens",
    "tenants",
)


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
