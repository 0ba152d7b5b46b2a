"""Job records: long-running background jobs (a fleet rebalance, a job submitted to Ray) with
their parameters, work items, progress (``done`` of ``total``), outcome counts, the errors of
failed items, and how they ended.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE jobs (
            id uuid PRIMARY KEY,
            kind text NOT NULL,
            status text NOT NULL CONSTRAINT jobs_status_known_v1
                CHECK (status IN ('running', 'succeeded', 'failed')),
            params jsonb NOT NULL DEFAULT '{}',
            items jsonb NOT NULL DEFAULT '[]',
            total integer NOT NULL DEFAULT 0,
            done integer NOT NULL DEFAULT 0,
            counts jsonb NOT NULL DEFAULT '{}',
            errors jsonb NOT NULL DEFAULT '[]',
            result jsonb,
            message text,
            created_by text NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            finished_at timestamptz,
            CONSTRAINT jobs_progress_within_total_v1 CHECK (0 <= done AND done <= total)
        );
        -- newest first, as listed (the cursor compares (created_at, id), as allocations' does)
        CREATE INDEX jobs_listing_v1 ON jobs (created_at DESC, id DESC);
        CREATE INDEX jobs_running_v1 ON jobs (created_at) WHERE status = 'running';
        -- one rebalance at a time: two would plan over the same leases
        CREATE UNIQUE INDEX jobs_one_running_rebalance_v1 ON jobs (kind)
            WHERE status = 'running' AND kind = 'rebalance';
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE jobs")
