"""Tokens that expire, are listed and revoked, and bootstrap admin tokens that a new one
replaces; per-tenant rate limits.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SCHEMA = """
ALTER TABLE api_tokens
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN purpose text NOT NULL DEFAULT 'api'
        CONSTRAINT api_tokens_purpose_known_v1 CHECK (purpose IN ('api', 'bootstrap'));
CREATE INDEX api_tokens_tenant_v1 ON api_tokens (tenant_id, created_at DESC);
ALTER TABLE tenants
    ADD COLUMN rate_limit_rps double precision
        CONSTRAINT tenants_rate_limit_positive_v1 CHECK (rate_limit_rps > 0),
    ADD COLUMN rate_limit_burst integer
        CONSTRAINT tenants_rate_burst_positive_v1 CHECK (rate_limit_burst > 0);

CREATE FUNCTION phonefleet_notify_token_revoked_v1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('phonefleet_changes', 'token:revoked');
    RETURN NULL;
END
$$;
CREATE TRIGGER api_tokens_revoked_v1 AFTER UPDATE OF revoked_at ON api_tokens
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION phonefleet_notify_token_revoked_v1();
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS api_tokens_revoked_v1 ON api_tokens")
    op.execute("DROP FUNCTION IF EXISTS phonefleet_notify_token_revoked_v1()")
    op.execute("ALTER TABLE tenants DROP COLUMN rate_limit_rps, DROP COLUMN rate_limit_burst")
    op.execute("DROP INDEX IF EXISTS api_tokens_tenant_v1")
    op.execute("ALTER TABLE api_tokens DROP COLUMN expires_at, DROP COLUMN purpose")
