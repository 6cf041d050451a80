"""Money after the order: each refund of a completed order; each reconciliation with
Stripe and what it found.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    # Expanding only: the service's role gets rows here through 0001's default privileges,
    # and an orders service of the version before never reads this table.
    op.execute(
        """
        CREATE TABLE refunds (
            refund_id text PRIMARY KEY,
            order_id text NOT NULL REFERENCES orders,
            amount_cents bigint NOT NULL CHECK (amount_cents > 0),
            reason text NOT NULL,
            restock boolean NOT NULL,
            status text NOT NULL,
            failure_reason text,
            stripe_refund_id text,
            idempotency_key text,
            fingerprint text,
            requested_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            UNIQUE (order_id, idempotency_key)
        )
        """
    )
    op.execute("CREATE INDEX refunds_by_order ON refunds (order_id, requested_at)")
    op.execute(
        """
        CREATE TABLE reconciliations (
            reconciliation_id text PRIMARY KEY,
            since timestamptz NOT NULL,
            until timestamptz NOT NULL,
            status text NOT NULL,
            checked_orders integer NOT NULL DEFAULT 0,
            checked_intents integer NOT NULL DEFAULT 0,
            discrepancies jsonb NOT NULL DEFAULT '[]',
            error text,
            started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            finished_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX reconciliations_newest ON reconciliations (started_at DESC)")
