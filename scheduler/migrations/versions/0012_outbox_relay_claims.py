"""The outbox relay claims a batch in a short transaction of its own and publishes it with no
transaction open; a claim not marked relayed within a while (its relay died) is taken over.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE outbox_events ADD COLUMN relay_claimed_at timestamptz")
    op.execute(
        "CREATE INDEX outbox_events_relayed_age_v1 ON outbox_events (relayed_at)"
        " WHERE relayed_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS outbox_events_relayed_age_v1")
    op.execute("ALTER TABLE outbox_events DROP COLUMN relay_claimed_at")
