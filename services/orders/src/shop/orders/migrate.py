"""`python -m shop.orders.migrate`: brings the order book's schema to the newest revision.

Run by the migrator's role (it owns the schema); the service's role gets rights on rows
only. Forward-only, expand then contract: a revision only adds (columns with defaults,
tables, indexes), so the `orders` deployment still running keeps working while a newer one
rolls out; what the old code needed is removed by a later revision, once no deployment
uses it. `./task dev` runs it on start, compose as a one-shot service `orders` waits for,
k8s as a Job.
"""

import logging
import re
import sys
import time
from pathlib import Path

import sqlalchemy
from alembic import command
from alembic.config import Config
from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shop.shared.settings import secrets_dir

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("shop.orders.migrate")


class MigratorSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", secrets_dir=secrets_dir())

    migrator_database_url: str = "postgresql://shop_migrator@127.0.0.1:15432/shop"
    migrator_database_password: SecretStr = SecretStr("")
    # The orders service's role: granted reading and writing rows, nothing else.
    orders_database_role: str = "shop_orders"
    # How long to wait for PostgreSQL to accept connections before giving up.
    migrate_wait_seconds: float = 120

    @field_validator("orders_database_role")
    @classmethod
    def plain_name(cls, role: str) -> str:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
            raise ValueError("a role name of lower-case letters, digits and _")
        return role


def engine(settings: MigratorSettings) -> sqlalchemy.Engine:
    url = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", settings.migrator_database_url)
    password = settings.migrator_database_password.get_secret_value()
    return sqlalchemy.create_engine(
        url, connect_args={"password": password} if password else {}, poolclass=sqlalchemy.NullPool
    )


def wait_for(db: sqlalchemy.Engine, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with db.connect():
                return
        except sqlalchemy.exc.OperationalError as e:
            if time.monotonic() > deadline:
                raise
            log.info("PostgreSQL not ready (%s); retrying", str(e).splitlines()[0])
            time.sleep(1)


def upgrade(settings: MigratorSettings) -> None:
    db = engine(settings)
    wait_for(db, settings.migrate_wait_seconds)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.connect() as connection:
        config.attributes |= {
            "connection": connection,
            "orders_role": settings.orders_database_role,
        }
        command.upgrade(config, "head")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        upgrade(MigratorSettings())
    except Exception as e:
        log.critical("migration failed: %s", e)
        sys.exit(1)
    log.info("the order book's schema is at the newest revision")


if __name__ == "__main__":
    main()
