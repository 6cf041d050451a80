from pydantic import SecretStr

from shop.shared.settings import ShopSettings


class GatewaySettings(ShopSettings):
    bind_host: str = "127.0.0.1"
    port: int = 8000
    admin_token: SecretStr = SecretStr("dev-admin-token")
    sse_ping_seconds: int = 15
    restate_timeout_seconds: float = 10
