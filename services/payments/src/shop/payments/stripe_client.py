"""The one StripeClient of this process: async, with the configured API base."""

from functools import cache

import aiohttp
import stripe
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

from shop.payments.settings import settings
from shop.shared.telemetry import tracing_enabled


@cache
def stripe_client() -> stripe.StripeClient:
    if tracing_enabled():  # each Stripe call a client span (only payments uses aiohttp)
        AioHttpClientInstrumentor().instrument()
    return stripe.StripeClient(
        settings.stripe_api_key.get_secret_value(),
        base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else {},
        # The SDK retries connection errors and 5xx itself, reusing our idempotency key.
        max_network_retries=settings.stripe_max_network_retries,
        # aiohttp: a Stripe call cost payments about twice the CPU through httpx (profiled
        # under load), and a shop makes two per order.
        http_client=stripe.AIOHTTPClient(timeout=aiohttp.ClientTimeout(total=80)),
    )
