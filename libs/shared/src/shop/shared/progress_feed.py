"""Where live progress goes in Valkey, shared by the publisher (fulfilment) and the readers
(gateway): one pub/sub channel for the deployment, plus a short per-order history stream so
a browser that reconnects gets exactly the events it missed.

History entries use the progress seq as their stream id (`0-<seq>`), so a re-sent event
cannot be added twice: Valkey refuses an id that is not greater than the last one.
"""

from typing import Any

import redis.asyncio as redis

from shop.shared.contracts.fulfilment import OrderStatus, Step
from shop.shared.settings import ShopSettings

CHANNEL = "shop:order-progress"
HISTORY_MAXLEN = 32  # far more than an order's steps
HISTORY_TTL_SECONDS = 3600

# Steps after which an order waits without working: its cancellation window, and the customer's
# bank (3-D Secure). Admission control counts only the orders that are working.
WAITING_STEPS: frozenset[Step] = frozenset({"reserved", "authenticating"})


def valkey(settings: ShopSettings, **options: Any) -> redis.Redis:
    """A client of the progress Valkey, with its password when it asks for one."""
    password = settings.valkey_password.get_secret_value() or None
    return redis.Redis.from_url(settings.valkey_url, password=password, **options)


class PushedStatus(OrderStatus):
    """A status as pushed: with when its workflow reached the step (Unix time), from which
    the gateway measures how late live progress is. Not the order's: never shown to anyone.
    (A reader that predates it ignores the field, as pydantic ignores unknown ones.)"""

    stepped_at: float | None = None


def pushed(status: OrderStatus, stepped_at: float) -> str:
    """The JSON pushed for a status (no second validation: the status is valid already)."""
    fields = {name: getattr(status, name) for name in OrderStatus.model_fields}
    return PushedStatus.model_construct(**fields, stepped_at=stepped_at).model_dump_json()


def history_key(order_id: str) -> str:
    return f"shop:order-progress:{order_id}"


def entry_id(status: OrderStatus) -> str:
    return f"0-{status.seq}"
