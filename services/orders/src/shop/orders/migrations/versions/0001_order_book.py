"""The order book: orders, their lines, their status history.

Revision ID: 0001
Revises:
"""

from alembic import context, op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE orders (
            order_id text PRIMARY KEY,
            customer_email text NOT NULL,
            currency text NOT NULL,
            total_cents bigint NOT NULL,
            fulfilment_version text NOT NULL,
            trace_id text,
            invocation_id text,
            payment_intent_id text,
            status text NOT NULL,
            step text NOT NULL,
            percent integer NOT NULL,
            message text NOT NULL,
            reason text,
            seq integer NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        )
        """
    )
    # Newest first, filtered, paged by (created_at, order_id): one index per filter.
    op.execute("CREATE INDEX orders_newest ON orders (created_at DESC, order_id DESC)")
    op.execute(
        "CREATE INDEX orders_by_email"
        " ON orders (lower(customer_email), created_at DESC, order_id DESC)"
    )
    op.execute("CREATE INDEX orders_by_status ON orders (status, created_at DESC, order_id DESC)")
    op.execute(
        """
        CREATE TABLE order_lines (
            order_id text NOT NULL REFERENCES orders,
            product_id text NOT NULL,
            name text NOT NULL,
            quantity integer NOT NULL,
            unit_price_cents bigint NOT NULL,
            PRIMARY KEY (order_id, product_id)
        )
        """
    )
    op.execute("CREATE INDEX order_lines_by_product ON order_lines (product_id, order_id)")
    op.execute(
        """
        CREATE TABLE order_history (
            order_id text NOT NULL REFERENCES orders,
            seq integer NOT NULL,
            status text NOT NULL,
            step text NOT NULL,
            message text NOT NULL,
            reason text,
            at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (order_id, seq)
        )
        """
    )
    # The service's role reads and writes rows, in these tables and in any a later revision
    # adds; it never deletes (the book keeps everything) nor changes the schema.
    role = context.config.attributes["orders_role"]
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    rows = "SELECT, INSERT, UPDATE"
    op.execute(f"GRANT {rows} ON ALL TABLES IN SCHEMA public TO {role}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {rows} ON TABLES TO {role}")
    op.execute(f"REVOKE ALL ON alembic_version FROM {role}")  # the schema's, not the service's
