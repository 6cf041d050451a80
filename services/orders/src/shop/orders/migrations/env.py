"""Alembic's environment: runs the revisions on the connection `shop.orders.migrate` opened,
under an advisory lock, so two migrators started at once (a Job retried, two replicas) take
turns instead of racing."""

from alembic import context
from sqlalchemy import text

LOCK = 0x0B00C  # any constant: the same for every migrator of this database

connection = context.config.attributes["connection"]
context.configure(connection=connection, transaction_per_migration=True)
connection.execute(text("SELECT pg_advisory_lock(:lock)"), {"lock": LOCK})
try:
    with context.begin_transaction():
        context.run_migrations()
finally:
    connection.execute(text("SELECT pg_advisory_unlock(:lock)"), {"lock": LOCK})
    connection.commit()
