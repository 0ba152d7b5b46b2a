"""The inbox (issue 12 §3): every platform message PhoneFleet received, applied exactly once
(its id claimed in the transaction of its effect), its attempts and why it failed; and the
platform users suspended (their requests refused), announced on the change feed.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE inbox_messages (
    message_id text PRIMARY KEY,
    source text NOT NULL,
    routing_key text NOT NULL,
    received_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    applied_at timestamptz,
    outcome text,
    last_error text,
    dead_at timestamptz,
    CONSTRAINT inbox_messages_one_end_v1 CHECK (applied_at IS NULL OR dead_at IS NULL)
);
CREATE INDEX inbox_messages_received_v1 ON inbox_messages (received_at);

CREATE TABLE user_suspensions (
    user_id text PRIMARY KEY,
    cause text NOT NULL,
    reason text NOT NULL,
    since timestamptz NOT NULL
);

CREATE FUNCTION phonefleet_notify_user_standing_v1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('phonefleet_changes', 'user:standing');
    RETURN NULL;
END
$$;
CREATE TRIGGER user_suspensions_changed_v1 AFTER INSERT OR UPDATE OR DELETE ON user_suspensions
    FOR EACH STATEMENT EXECUTE FUNCTION phonefleet_notify_user_standing_v1();
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS user_suspensions_changed_v1 ON user_suspensions")
    op.execute("DROP FUNCTION IF EXISTS phonefleet_notify_user_standing_v1()")
    op.execute("DROP TABLE IF EXISTS user_suspensions")
    op.execute("DROP TABLE IF EXISTS inbox_messages")
