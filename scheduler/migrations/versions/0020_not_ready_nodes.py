"""The few nodes that are not ready, indexed: counting the available devices of a big fleet
subtracts theirs from every available device instead of joining every node.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX nodes_not_ready_v1 ON nodes (id) WHERE status <> 'ready'")


def downgrade() -> None:
    op.execute("DROP INDEX nodes_not_ready_v1")
