"""Check-in of bookings: a booking may ask its user to check in within ``check_in_minutes``
of its start (0: never asked); one who does not is a no-show, its lease revoked.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE reservations ADD COLUMN check_in_minutes integer NOT NULL DEFAULT 0
            CONSTRAINT reservations_check_in_within_bounds_v1
            CHECK (check_in_minutes BETWEEN 0 AND 240);
        ALTER TABLE reservations ADD COLUMN checked_in_at timestamptz;
        -- the housekeeper's no-show sweep: started bookings still waiting for their user
        CREATE INDEX reservations_awaiting_check_in_v1 ON reservations (start_time)
            WHERE status = 'active' AND check_in_minutes > 0 AND checked_in_at IS NULL;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX reservations_awaiting_check_in_v1;
        ALTER TABLE reservations DROP COLUMN checked_in_at;
        ALTER TABLE reservations DROP COLUMN check_in_minutes;
        """
    )
