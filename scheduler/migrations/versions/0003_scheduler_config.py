"""Cluster-wide scheduler settings that an admin changes at run time (placement strategy).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE scheduler_config (
    singleton boolean PRIMARY KEY DEFAULT true CONSTRAINT scheduler_config_one_row_v1
        CHECK (singleton),
    strategy text NOT NULL DEFAULT 'binpack' CONSTRAINT scheduler_config_strategy_known_v1
        CHECK (strategy IN ('binpack', 'spread', 'balanced', 'least_loaded')),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO scheduler_config (singleton) VALUES (true);
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS scheduler_config")
