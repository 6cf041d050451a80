from pydantic import SecretStr

from shop.shared.settings import ServiceSettings


class PaymentsSettings(ServiceSettings):
    port: int = 9082
    stripe_api_key: SecretStr = SecretStr("sk_test_shop_dev")
    # None talks to Stripe itself; dev and tests point this at the Stripe emulator.
    stripe_api_base: str | None = None
    stripe_max_network_retries: int = 2


settings = PaymentsSettings()
