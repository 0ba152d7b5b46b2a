"""The wait queue: entries that wait for capacity, and the tenant settings it needs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE queue_entries (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    user_id text NOT NULL,
    tier text NOT NULL,
    status text NOT NULL CONSTRAINT queue_entries_status_known_v1
        CHECK (status IN ('waiting', 'fulfilled', 'cancelled', 'timed_out')),
    duration_minutes integer NOT NULL,
    requirements jsonb NOT NULL,
    submitted_at timestamptz NOT NULL,
    deadline_at timestamptz NOT NULL,
    ended_at timestamptz,
    allocation_id uuid REFERENCES allocations (id)
        CONSTRAINT queue_entries_one_entry_per_allocation_v1 UNIQUE,
    reason text,
    CONSTRAINT queue_entries_fulfilled_iff_allocation_v1
        CHECK ((status = 'fulfilled') = (allocation_id IS NOT NULL)),
    CONSTRAINT queue_entries_ended_iff_not_waiting_v1
        CHECK ((status = 'waiting') = (ended_at IS NULL))
);
CREATE INDEX queue_entries_waiting_v1 ON queue_entries (deadline_at) WHERE status = 'waiting';
CREATE INDEX queue_entries_tenant_v1 ON queue_entries (tenant_id, user_id, submitted_at DESC);
CREATE INDEX queue_entries_listing_v1 ON queue_entries (submitted_at DESC, id DESC);
CREATE INDEX usage_records_recent_v1 ON usage_records (ended_at);
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS usage_records_recent_v1")
    op.execute("DROP TABLE IF EXISTS queue_entries CASCADE")
