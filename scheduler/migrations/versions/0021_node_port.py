"""What the platform's console reads: the port a node's host agent listens on, as the platform
registers it, and the queue entry a lease came from (a task's priority), indexed.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE nodes ADD COLUMN port integer"
        " CONSTRAINT nodes_port_range_v1 CHECK (port BETWEEN 1 AND 65535)"
    )
    op.execute(
        "CREATE INDEX queue_entries_allocation_v1 ON queue_entries (allocation_id)"
        " WHERE allocation_id IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX queue_entries_allocation_v1")
    op.execute("ALTER TABLE nodes DROP COLUMN port")
