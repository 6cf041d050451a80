from datetime import timedelta

from shop.shared.ownership import OperatorSettings
from shop.shared.settings import ServiceSettings

# How long a finished order's workflow (its status, its page) is kept by Restate.
ORDER_RETENTION = timedelta(days=7)


class FulfilmentSettings(ServiceSettings, OperatorSettings):
    port: int = 9081
    # How long a customer may cancel before the payment is captured (a durable timer).
    cancel_window_seconds: float = 5
    # How long an order waits for the customer to confirm the payment with their bank (3-D
    # Secure) before it gives up and voids the payment (a durable timer).
    payment_auth_timeout_seconds: float = 900
    # How long a progress push to Valkey may take before it is given up (it is best effort).
    progress_push_timeout_seconds: float = 0.5
    # FULFILMENT_VERSION: which release of this workflow the process is. Any other than v1
    # names itself in the "received" step's message, so a new version deployed beside the old
    # one (docs/deploy.md, "Shipping a new version of one service") is visible on each order.
    fulfilment_version: str = "v1"


settings = FulfilmentSettings()
