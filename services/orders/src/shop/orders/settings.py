from pydantic import SecretStr

from shop.shared.ownership import OperatorSettings
from shop.shared.settings import ServiceSettings

DEV_DATABASE_URL = "postgresql://shop_orders@127.0.0.1:15432/shop"


class DatabaseSettings(ServiceSettings):
    """Where the order book is. The password apart from the URL, so it can come from a
    secret file (compose, k8s) while the URL stays plain configuration."""

    # ORDERS_DATABASE_URL: the service's role, which may read and write rows, nothing else.
    orders_database_url: str = DEV_DATABASE_URL
    orders_database_password: SecretStr = SecretStr("")
    # How long a write or a read waits for a connection before it fails (and Restate retries).
    orders_database_timeout_seconds: float = 5
    orders_database_pool_size: int = 4


class OrdersSettings(DatabaseSettings, OperatorSettings):
    port: int = 9085


settings = OrdersSettings()
