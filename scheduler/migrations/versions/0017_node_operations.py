"""Node operations: maintenance (with its reason), drains (their mode and deadline, and
whether the node is removed once drained), and the ``drained`` and ``removed`` statuses.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE nodes DROP CONSTRAINT nodes_status_known_v1;
        ALTER TABLE nodes ADD CONSTRAINT nodes_status_known_v2 CHECK (status IN (
            'ready', 'cordoned', 'draining', 'drained', 'maintenance', 'offline', 'removed'));
        ALTER TABLE nodes ADD COLUMN status_reason text;
        ALTER TABLE nodes ADD COLUMN drain_mode text
            CONSTRAINT nodes_drain_mode_known_v1 CHECK (drain_mode IN ('wait', 'migrate'));
        ALTER TABLE nodes ADD COLUMN drain_deadline timestamptz;
        ALTER TABLE nodes ADD COLUMN remove_when_drained boolean NOT NULL DEFAULT false;
        ALTER TABLE nodes DROP CONSTRAINT nodes_status_before_offline_known_v1;
        ALTER TABLE nodes ADD CONSTRAINT nodes_status_before_offline_known_v2
            CHECK (status_before_offline IN
                ('ready', 'cordoned', 'draining', 'drained', 'maintenance'));
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE nodes DROP CONSTRAINT nodes_status_before_offline_known_v2;
        ALTER TABLE nodes ADD CONSTRAINT nodes_status_before_offline_known_v1
            CHECK (status_before_offline IN ('ready', 'cordoned', 'draining', 'maintenance'));
        ALTER TABLE nodes DROP COLUMN remove_when_drained;
        ALTER TABLE nodes DROP COLUMN drain_deadline;
        ALTER TABLE nodes DROP COLUMN drain_mode;
        ALTER TABLE nodes DROP COLUMN status_reason;
        ALTER TABLE nodes DROP CONSTRAINT nodes_status_known_v2;
        ALTER TABLE nodes ADD CONSTRAINT nodes_status_known_v1 CHECK (
            status IN ('ready', 'cordoned', 'draining', 'maintenance', 'offline'));
        """
    )
