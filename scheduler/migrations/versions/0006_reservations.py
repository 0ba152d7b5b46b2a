"""Reservations: a device booked for a future window.

Non-overlap per device is enforced twice: always by a serialized check under the device's
row lock (the adapters), and, where the ``btree_gist`` extension exists, by the exclusion
constraint ``reservations_no_overlap_v1`` too (the embedded PostgreSQL has no btree_gist).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE reservations (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    user_id text NOT NULL,
    device_id uuid NOT NULL REFERENCES devices (id),
    status text NOT NULL CONSTRAINT reservations_status_known_v1 CHECK (status IN (
        'pending', 'active', 'completed', 'cancelled', 'no_show', 'failed')),
    start_time timestamptz NOT NULL,
    end_time timestamptz NOT NULL,
    prewarm_at timestamptz NOT NULL,
    remind_before_minutes integer NOT NULL,
    requirements jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    allocation_id uuid REFERENCES allocations (id)
        CONSTRAINT reservations_one_per_allocation_v1 UNIQUE,
    ended_at timestamptz,
    reason text,
    reminded_at timestamptz,
    prewarmed_at timestamptz,
    CONSTRAINT reservations_window_ordered_v1 CHECK (start_time < end_time),
    CONSTRAINT reservations_prewarm_before_start_v1 CHECK (prewarm_at <= start_time)
);
CREATE INDEX reservations_device_window_v1 ON reservations (device_id, start_time)
    WHERE status IN ('pending', 'active');
CREATE INDEX reservations_pending_start_v1 ON reservations (start_time) WHERE status = 'pending';
CREATE INDEX reservations_listing_v1 ON reservations (tenant_id, user_id, start_time);
"""

EXCLUSION = """
ALTER TABLE reservations ADD CONSTRAINT reservations_no_overlap_v1
    EXCLUDE USING gist (device_id WITH =, tstzrange(prewarm_at, end_time) WITH &&)
    WHERE (status IN ('pending', 'active'))
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    connection = op.get_bind()
    available = connection.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'btree_gist'")
    ).first()
    if available:
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(EXCLUSION)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS reservations")
