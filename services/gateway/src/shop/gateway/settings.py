import logging
import re
from typing import Self

from pydantic import Field, SecretStr, model_validator

from shop.shared.ownership import DEV_ADMIN_TOKEN
from shop.shared.settings import ShopSettings
from shop.shared.stripe_webhook import DEV_WEBHOOK_SECRET

log = logging.getLogger(__name__)

# The local stack's Stripe webhook signing secret (the emulator signs with it): dev mode only.
# Outside dev mode: an admin token as long as `openssl rand -hex 16` prints, and a webhook
# secret in Stripe's format (whsec_ and at least 24 base64 characters). A placeholder copied
# from an example (replace-me, changeme...) never starts production.
MIN_ADMIN_TOKEN_LENGTH = 32
WEBHOOK_SECRET_FORMAT = re.compile(r"whsec_[A-Za-z0-9+/=]{24,}")
PLACEHOLDER = re.compile(r"replace|change.?me|example|your|secret|token|xxxx", re.IGNORECASE)


class GatewaySettings(ShopSettings):
    bind_host: str = "127.0.0.1"
    port: int = 8000
    # ADMIN_TOKEN guards the stock endpoint and the operator page. Required outside dev mode
    # (SHOP_DEV_MODE=true), where an unset token falls back to DEV_ADMIN_TOKEN.
    admin_token: SecretStr = SecretStr("")
    # STRIPE_WEBHOOK_SECRET: the signing secret of the webhook endpoint (`whsec_...`, Stripe's
    # Dashboard or `stripe listen`); /webhooks/stripe takes only events signed with it.
    # Required outside dev mode, where an unset secret falls back to DEV_WEBHOOK_SECRET.
    stripe_webhook_secret: SecretStr = SecretStr("")
    # Where operators open Restate's UI (links from the operator page to each order's journal).
    restate_ui_url: str = "http://127.0.0.1:9070/ui"
    # Where SREs open traces (links from the order and operator pages to each order's trace).
    jaeger_ui_url: str = "http://127.0.0.1:16686"
    # PUBLIC_BASE_URL: where customers reach the storefront (https://shop.example). The bank
    # sends a customer back to the order's page there after a 3-D Secure check, the order's
    # cookie is Secure and HSTS is sent when it is https. Unset (dev): the request's own URL.
    public_base_url: str = ""
    # PAYMENT_PAGE_URL: a base URL besides https: ones that the order page may link to for the
    # bank's confirmation (3-D Secure): the Stripe emulator's public URL in dev and tests.
    payment_page_url: str = ""
    sse_ping_seconds: int = 15
    # Processes serving the gateway's port (GATEWAY_WORKERS), each with its own Valkey
    # subscription and admission bound: more cores for thousands of SSE streams.
    gateway_workers: int = Field(default=1, ge=1)
    restate_timeout_seconds: float = 10
    # Orders this process may have working before it answers 429 (see admission.py); those
    # waiting out their window or for the bank do not count. 32 working orders keep a 2-core
    # shop at its peak rate; more only slow each order (bench at 3x overload: the backlog
    # completed at 1.08x the closed-loop rate with 32, 0.88x with 64). Raise it with cores, and
    # with slower providers: it also caps the rate at (bound / an order's working time).
    max_orders_in_flight: int = 32
    order_in_flight_seconds: float = 30
    # What one client (address) may take of a process (client_limits.py; 0: no limit): orders
    # placed per minute (a third of them at once, so no client holds the bound above), and
    # live-progress streams held; streams of one order, and in all.
    orders_per_client_per_minute: int = Field(default=30, ge=0)
    streams_per_client: int = Field(default=50, ge=0)
    streams_per_order: int = Field(default=20, ge=0)
    streams_in_all: int = Field(default=10_000, ge=0)

    @model_validator(mode="after")
    def _admin_token_required_outside_dev(self) -> Self:
        token = self.admin_token.get_secret_value().strip()
        if self.shop_dev_mode:
            if not token:
                log.warning("ADMIN_TOKEN is not set; dev mode: using %r", DEV_ADMIN_TOKEN)
                self.admin_token = SecretStr(DEV_ADMIN_TOKEN)
            return self
        if not token:
            raise ValueError(
                "ADMIN_TOKEN is not set. It guards the operator page and the stock API, and "
                "there is no default outside the dev stack: set ADMIN_TOKEN to a long random "
                "secret (e.g. `openssl rand -hex 32`), or SHOP_DEV_MODE=true for local use."
            )
        if token == DEV_ADMIN_TOKEN:
            raise ValueError(
                f"ADMIN_TOKEN is the published dev token {DEV_ADMIN_TOKEN!r}, which anyone can "
                "read in the README: set a secret of your own, or SHOP_DEV_MODE=true for local "
                "use."
            )
        if len(token) < MIN_ADMIN_TOKEN_LENGTH or len(set(token)) < 8 or PLACEHOLDER.search(token):
            raise ValueError(
                f"ADMIN_TOKEN is too weak or a placeholder: it takes at least "
                f"{MIN_ADMIN_TOKEN_LENGTH} random characters (e.g. `openssl rand -hex 32`)."
            )
        return self

    @model_validator(mode="after")
    def _webhook_secret_required_outside_dev(self) -> Self:
        secret = self.stripe_webhook_secret.get_secret_value().strip()
        if self.shop_dev_mode:
            if not secret:
                self.stripe_webhook_secret = SecretStr(DEV_WEBHOOK_SECRET)
            return self
        if not secret:
            raise ValueError(
                "STRIPE_WEBHOOK_SECRET is not set. Stripe signs each webhook with it and the "
                "gateway refuses events it cannot verify: set it to the endpoint's signing "
                "secret (whsec_...), or SHOP_DEV_MODE=true for local use."
            )
        if secret == DEV_WEBHOOK_SECRET:
            raise ValueError(
                f"STRIPE_WEBHOOK_SECRET is the published dev secret {DEV_WEBHOOK_SECRET!r}: set "
                "the endpoint's own signing secret, or SHOP_DEV_MODE=true for local use."
            )
        body = secret.removeprefix("whsec_")
        if not WEBHOOK_SECRET_FORMAT.fullmatch(secret) or PLACEHOLDER.search(body):
            raise ValueError(
                "STRIPE_WEBHOOK_SECRET is not a Stripe signing secret (whsec_ and at least 24 "
                "letters and digits, as Stripe shows it for the endpoint) or is a placeholder."
            )
        return self


def startup_error(error: Exception) -> str:
    """One readable line per setting pydantic refused, for a process that exits on it."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    return "; ".join(e["msg"].removeprefix("Value error, ") for e in errors())
