"""``phonefleet_refuse(reason)``: a statement that must not commit unless it did its work
raises with it (SQLSTATE ``PF001``, the reason as message). It lets the allocate path send its
grant, outbox event, idempotency outcome and ``COMMIT`` in one round trip: a grant that lost
its race aborts the transaction instead of committing half of it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE FUNCTION phonefleet_refuse(reason text) RETURNS boolean LANGUAGE plpgsql"
        " VOLATILE AS $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'PF001', MESSAGE = reason;"
        " END $$"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS phonefleet_refuse(text)")
