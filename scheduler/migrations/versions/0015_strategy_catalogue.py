"""The strategy catalogue: named strategies (a type and the weights of its score terms),
exactly one active (a unique index allows at most one; a deferred constraint trigger checks
at every commit that one is), and the history of activations. The active strategy's type and
weights are copied to ``scheduler_config``, where placement reads them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

#: The built-in strategies, one per type, with the optimizer's default points (fit, balance,
#: node): ``placement.strategies.POINTS`` as of this revision.
BUILT_IN = {
    "binpack": ("Fill busy nodes first; idle nodes stay empty to drain.", (600, 0, 400)),
    "spread": ("Fewest leased devices first: leases spread over nodes.", (200, 0, 800)),
    "least_loaded": ("The node with the most free resources first.", (200, 0, 800)),
    "balanced": ("Even utilisation across nodes and across resources.", (200, 200, 600)),
}


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE strategies (
            id uuid PRIMARY KEY,
            name text NOT NULL CONSTRAINT strategies_name_unique_v1 UNIQUE,
            type text NOT NULL
                CHECK (type IN ('binpack', 'spread', 'balanced', 'least_loaded')),
            description text NOT NULL DEFAULT '',
            weights integer[] NOT NULL CHECK (cardinality(weights) = 3),
            is_active boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        );
        CREATE UNIQUE INDEX strategies_one_active_v1 ON strategies ((true)) WHERE is_active;
        CREATE FUNCTION strategies_exactly_one_active() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF (SELECT count(*) FROM strategies WHERE is_active) <> 1 THEN
                RAISE EXCEPTION 'exactly one strategy must be active'
                    USING ERRCODE = 'check_violation',
                    CONSTRAINT = 'strategies_exactly_one_active_v1';
            END IF;
            RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER strategies_exactly_one_active_v1
            AFTER INSERT OR UPDATE OR DELETE ON strategies
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
            EXECUTE FUNCTION strategies_exactly_one_active();
        CREATE TABLE strategy_activations (
            seq bigserial PRIMARY KEY,
            strategy_id uuid REFERENCES strategies (id) ON DELETE SET NULL,
            name text NOT NULL,
            type text NOT NULL,
            activated_at timestamptz NOT NULL,
            activated_by text NOT NULL
        );
        ALTER TABLE scheduler_config ADD COLUMN strategy_weights integer[];
        """
    )
    for name, (description, weights) in BUILT_IN.items():
        op.execute(
            "INSERT INTO strategies (id, name, type, description, weights, is_active,"
            f" created_at, updated_at) SELECT gen_random_uuid(), '{name}', '{name}',"
            f" '{description}', ARRAY{list(weights)}, strategy = '{name}', now(), now()"
            " FROM scheduler_config"
        )
    op.execute(
        "UPDATE scheduler_config SET strategy_weights = s.weights FROM strategies s"
        " WHERE s.is_active"
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE scheduler_config DROP COLUMN strategy_weights;
        DROP TABLE strategy_activations;
        DROP TABLE strategies;
        DROP FUNCTION strategies_exactly_one_active();
        """
    )
