"""Queue entries can fail: a stored request no fleet can hold is taken out of the queue with
its reason, so one bad entry never stops a drain.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE queue_entries DROP CONSTRAINT queue_entries_status_known_v1,"
        " ADD CONSTRAINT queue_entries_status_known_v2 CHECK (status IN"
        " ('waiting', 'fulfilled', 'cancelled', 'timed_out', 'failed'))"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE queue_entries DROP CONSTRAINT queue_entries_status_known_v2,"
        " ADD CONSTRAINT queue_entries_status_known_v1 CHECK (status IN"
        " ('waiting', 'fulfilled', 'cancelled', 'timed_out'))"
    )
