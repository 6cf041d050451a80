from pydantic import SecretStr

from shop.shared.settings import ShopSettings


class GatewaySettings(ShopSettings):
    bind_host: str = "127.0.0.1"
    port: int = 8000
    admin_token: SecretStr = SecretStr("dev-admin-token")
    # Where operators open Restate's UI (links from the operator page to each order's journal).
    restate_ui_url: str = "http://127.0.0.1:9070/ui"
    # Where SREs open traces (links from the order and operator pages to each order's trace).
    jaeger_ui_url: str = "http://127.0.0.1:16686"
    sse_ping_seconds: int = 15
    restate_timeout_seconds: float = 10
