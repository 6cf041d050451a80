"""Operator actions: what an operator did to an order's invocations (resume, retry, kill).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE operator_actions (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- no sequence to grant
            order_id text NOT NULL REFERENCES orders,
            action text NOT NULL,
            invocation_id text NOT NULL,
            target text NOT NULL,
            actor text NOT NULL,
            outcome text NOT NULL,
            at timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """
    )
    op.execute("CREATE INDEX operator_actions_by_order ON operator_actions (order_id, at)")
