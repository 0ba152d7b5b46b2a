"""Usage trends read the usage records that ended within a window, across tenants.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX usage_records_ended_v1 ON usage_records (ended_at)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS usage_records_ended_v1")
