"""A queue a crowd can watch: each drain stores every waiting entry's view (priority,
position, entries ahead, estimated start, reason) on its row, so a read is one lookup; and
status changes of entries and leases are announced (``pg_notify``) on commit, so clients
can wait for them without polling.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SCHEMA = """
ALTER TABLE queue_entries
    ADD COLUMN priority double precision,
    ADD COLUMN position integer,
    ADD COLUMN ahead_count integer,
    ADD COLUMN estimated_start_at timestamptz,
    ADD COLUMN wait_reason text,
    ADD COLUMN viewed_at timestamptz;

CREATE FUNCTION phonefleet_notify_status_v1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('phonefleet_changes', TG_ARGV[0] || ':' || NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER queue_entries_status_changed_v1 AFTER UPDATE OF status ON queue_entries
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION phonefleet_notify_status_v1('queue');
CREATE TRIGGER allocations_status_changed_v1 AFTER UPDATE OF status ON allocations
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION phonefleet_notify_status_v1('allocation');
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS allocations_status_changed_v1 ON allocations")
    op.execute("DROP TRIGGER IF EXISTS queue_entries_status_changed_v1 ON queue_entries")
    op.execute("DROP FUNCTION IF EXISTS phonefleet_notify_status_v1()")
    op.execute(
        "ALTER TABLE queue_entries DROP COLUMN priority, DROP COLUMN position,"
        " DROP COLUMN ahead_count, DROP COLUMN estimated_start_at, DROP COLUMN wait_reason,"
        " DROP COLUMN viewed_at"
    )
