"""Node health: an offline node remembers the status it had, to return to it when its
heartbeats come back; leases remember the device they moved from.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE nodes ADD COLUMN status_before_offline text"
        " CONSTRAINT nodes_status_before_offline_known_v1"
        " CHECK (status_before_offline IN ('ready', 'cordoned', 'draining', 'maintenance'))"
    )
    op.execute("ALTER TABLE allocations ADD COLUMN moved_from uuid REFERENCES devices (id)")


def downgrade() -> None:
    op.execute("ALTER TABLE allocations DROP COLUMN moved_from")
    op.execute("ALTER TABLE nodes DROP COLUMN status_before_offline")
