"""Lease extensions: per-tenant limits, and the expiry warning sent once per lease.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = """
ALTER TABLE tenants
    ADD COLUMN max_extensions integer NOT NULL DEFAULT 3
        CONSTRAINT tenants_max_extensions_non_negative_v1 CHECK (max_extensions >= 0),
    ADD COLUMN max_lease_minutes integer NOT NULL DEFAULT 2880
        CONSTRAINT tenants_max_lease_minutes_positive_v1 CHECK (max_lease_minutes > 0);
ALTER TABLE allocations ADD COLUMN warned_at timestamptz;
CREATE INDEX allocations_unwarned_v1 ON allocations (expires_at)
    WHERE status = 'active' AND warned_at IS NULL;
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS allocations_unwarned_v1")
    op.execute("ALTER TABLE allocations DROP COLUMN IF EXISTS warned_at")
    op.execute(
        "ALTER TABLE tenants DROP COLUMN IF EXISTS max_extensions,"
        " DROP COLUMN IF EXISTS max_lease_minutes"
    )
