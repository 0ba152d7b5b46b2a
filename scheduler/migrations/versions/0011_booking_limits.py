"""Bookings of a named device remember it (so a device that is no longer schedulable fails
the booking rather than moving it), and count against the tenant's quota for their window.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE reservations ADD COLUMN device_pinned boolean NOT NULL DEFAULT false")
    op.execute(
        "CREATE INDEX reservations_tenant_window_v1 ON reservations (tenant_id, end_time)"
        " WHERE status IN ('pending', 'active')"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS reservations_tenant_window_v1")
    op.execute("ALTER TABLE reservations DROP COLUMN device_pinned")
