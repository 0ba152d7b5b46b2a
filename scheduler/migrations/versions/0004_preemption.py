"""Preemption: a lease can be marked for revocation on behalf of a waiting entry.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = """
ALTER TABLE allocations
    ADD COLUMN revoke_at timestamptz,
    ADD COLUMN preempted_for uuid REFERENCES queue_entries (id)
        CONSTRAINT allocations_one_preemption_per_entry_v1 UNIQUE,
    ADD CONSTRAINT allocations_revocation_has_beneficiary_v1
        CHECK ((revoke_at IS NULL) = (preempted_for IS NULL));
CREATE INDEX allocations_revocations_v1 ON allocations (revoke_at)
    WHERE status = 'active' AND revoke_at IS NOT NULL;
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS allocations_revocations_v1")
    op.execute(
        "ALTER TABLE allocations DROP CONSTRAINT IF EXISTS allocations_revocation_has_beneficiary_v1,"
        " DROP COLUMN IF EXISTS preempted_for, DROP COLUMN IF EXISTS revoke_at"
    )
