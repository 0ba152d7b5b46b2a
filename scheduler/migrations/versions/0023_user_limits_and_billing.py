"""What the platform's quota and billing messages leave (issue 12 §3): a user's own device
limit, enforced by the database on every lease it is granted (the excess above a lowered
limit ends after a grace), and a user's billing standing (failed payments counted, a
suspension due after a grace unless a payment lifts it).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE user_limits (
    user_id text PRIMARY KEY,
    max_devices integer NOT NULL CONSTRAINT user_limits_max_devices_v1 CHECK (max_devices >= 0),
    set_at timestamptz NOT NULL,
    -- the leases above the limit end then (oldest first); NULL: none to end
    enforce_at timestamptz
);
CREATE INDEX user_limits_enforce_v1 ON user_limits (enforce_at) WHERE enforce_at IS NOT NULL;
CREATE INDEX allocations_active_user_v1 ON allocations (user_id) WHERE status = 'active';

-- A user with a limit is granted a lease only below it: concurrent grants of that user are
-- serialized by a transaction lock and counted after it (each query sees what committed).
CREATE FUNCTION phonefleet_user_limit_v1() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cap integer;
BEGIN
    SELECT max_devices INTO cap FROM user_limits WHERE user_id = NEW.user_id;
    IF cap IS NULL THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('phonefleet-user-limit'), hashtext(NEW.user_id));
    IF (SELECT count(*) FROM allocations WHERE user_id = NEW.user_id AND status = 'active')
            >= cap THEN
        PERFORM phonefleet_refuse('user_limit');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER allocations_user_limit_v1 BEFORE INSERT ON allocations
    FOR EACH ROW WHEN (NEW.status = 'active') EXECUTE FUNCTION phonefleet_user_limit_v1();

CREATE TABLE billing_standing (
    user_id text PRIMARY KEY,
    payment_failures integer NOT NULL DEFAULT 0,
    -- the user is suspended then unless a payment lifts it first
    suspend_at timestamptz,
    reason text,
    changed_at timestamptz NOT NULL
);
CREATE INDEX billing_standing_due_v1 ON billing_standing (suspend_at)
    WHERE suspend_at IS NOT NULL;
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS billing_standing")
    op.execute("DROP TRIGGER IF EXISTS allocations_user_limit_v1 ON allocations")
    op.execute("DROP FUNCTION IF EXISTS phonefleet_user_limit_v1()")
    op.execute("DROP INDEX IF EXISTS allocations_active_user_v1")
    op.execute("DROP TABLE IF EXISTS user_limits")
