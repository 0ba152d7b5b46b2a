"""Idempotency keys hold the typed outcome of their command (its result or its refusal),
written in the command's own transaction: never HTTP bytes, never a secret.

Keys written by the previous request path (response status and body) are dropped: they
live 24 hours at most, and a retry of one of them runs as a new request.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM idempotency_keys")
    op.execute(
        "ALTER TABLE idempotency_keys DROP COLUMN response_status, DROP COLUMN response_body,"
        " ADD COLUMN outcome jsonb"
    )
    op.execute("CREATE INDEX idempotency_keys_age_v1 ON idempotency_keys (created_at)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS idempotency_keys_age_v1")
    op.execute("DELETE FROM idempotency_keys")
    op.execute(
        "ALTER TABLE idempotency_keys DROP COLUMN outcome,"
        " ADD COLUMN response_status integer, ADD COLUMN response_body jsonb"
    )
