"""Overcommit per node (issue 13 §1), as Anbox Cloud has it: its devices may together ask for
``cpu_allocation_rate`` times its cores and ``memory_allocation_rate`` times its memory.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE nodes"
        " ADD COLUMN cpu_allocation_rate double precision NOT NULL DEFAULT 1"
        " CONSTRAINT nodes_cpu_allocation_rate_v1 CHECK (cpu_allocation_rate BETWEEN 1 AND 16),"
        " ADD COLUMN memory_allocation_rate double precision NOT NULL DEFAULT 1"
        " CONSTRAINT nodes_memory_allocation_rate_v1"
        " CHECK (memory_allocation_rate BETWEEN 1 AND 16)"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE nodes DROP COLUMN cpu_allocation_rate, DROP COLUMN memory_allocation_rate"
    )
