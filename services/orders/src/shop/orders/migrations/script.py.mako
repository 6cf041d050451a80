"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from alembic import op

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}


def upgrade() -> None:
    # Expand only: add what the new code needs; remove what old code used in a later
    # revision, once no deployment runs that code.
    ${upgrades if upgrades else "pass"}
