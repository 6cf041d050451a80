"""The one StripeClient of this process: async (httpx), with the configured API base."""

from functools import cache

import stripe

from shop.payments.settings import settings


@cache
def stripe_client() -> stripe.StripeClient:
    base: stripe.BaseAddresses = {}
    if settings.stripe_api_base:
        base["api"] = settings.stripe_api_base
    return stripe.StripeClient(
        settings.stripe_api_key.get_secret_value(),
        base_addresses=base,
        # The SDK retries connection errors and 5xx itself, reusing our idempotency key.
        max_network_retries=settings.stripe_max_network_retries,
        http_client=stripe.HTTPXClient(),
    )
