"""What a customer may ask for, validated at the edge, and how it becomes an Order.

Prices, names and currency come from the catalog, never from the client. An order's id and
its secret are random: nothing a client sends decides them, so nobody can compute another
customer's order id from a key, and only whoever placed an order (and an operator) can
change it.
"""

import secrets
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, field_validator

from shop.gateway.deps import Admission
from shop.gateway.restate_ingress import RestateIngress
from shop.shared.catalog import CATALOG, priced_lines
from shop.shared.contracts.common import OrderLine
from shop.shared.contracts.fulfilment import KeyedOrder, Order
from shop.shared.ownership import sha256

MAX_QUANTITY = 100


def known_product(product_id: str) -> str:
    if product_id not in CATALOG:
        raise ValueError(f"unknown product {product_id!r}")
    return product_id


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The catalog's SKUs, in the OpenAPI document too (checked by known_product, which names
    # the product it does not know).
    product_id: Annotated[
        str, AfterValidator(known_product), Field(json_schema_extra={"enum": sorted(CATALOG)})
    ]
    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class OrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_email: EmailStr
    items: list[OrderItem] = Field(min_length=1, max_length=20)
    # Stripe test payment methods (pm_card_visa, pm_card_chargeDeclined, ...).
    payment_method: str = Field(default="pm_card_visa", pattern=r"^pm_[A-Za-z0-9_]{1,64}$")

    @field_validator("items")
    @classmethod
    def total_per_product_in_range(cls, items: list[OrderItem]) -> list[OrderItem]:
        if any(line.quantity > MAX_QUANTITY for line in order_lines(items)):
            raise ValueError(f"at most {MAX_QUANTITY} of one product per order")
        return items


IdempotencyKey = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")]
ORDER_ID_PATTERN = r"^ord_[0-9a-f]{24}$"


def new_order_id() -> str:
    return f"ord_{secrets.token_hex(12)}"  # 96 bits from the OS's CSPRNG


def new_secret() -> str:
    return f"osec_{secrets.token_urlsafe(24)}"  # 192 bits


def key_ref(idempotency_key: str) -> str:
    """The key's record in Restate (OrderKeys/<ref>): any printable key becomes a safe path."""
    return sha256(idempotency_key)


def fingerprint(request: OrderRequest) -> str:
    """What makes two requests under one key the same request."""
    return sha256(request.model_dump_json())


def order_lines(items: list[OrderItem]) -> list[OrderLine]:
    """Catalog lines for the items; the same product twice becomes one line."""
    return priced_lines((item.product_id, item.quantity) for item in items)


def build_order(request: OrderRequest, secret: str, site: str | None = None) -> Order:
    """A new order, with a new id, that only `secret` can change. `site` is the storefront's
    address: a bank that asks the customer to confirm the payment sends them back to the
    order's page there."""
    lines = order_lines(request.items)
    order_id = new_order_id()
    return Order(
        order_id=order_id,
        secret_digest=sha256(secret),
        customer_email=str(request.customer_email),
        lines=lines,
        currency=CATALOG[lines[0].product_id].currency,
        payment_method=request.payment_method,
        return_url=f"{site.rstrip('/')}/orders/{order_id}" if site else None,
        placed_at=datetime.now(UTC),
    )


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before, for a different request."""


class PlacedOrder(BaseModel):
    order_id: str
    secret: str | None  # None for a replay under an Idempotency-Key: the first got it


async def start_once(
    ingress: RestateIngress, request: OrderRequest, idempotency_key: str | None, site: str | None
) -> PlacedOrder:
    """The order started, or with an Idempotency-Key, the order that key started first
    (then without its secret, which only the request that started it was given)."""
    secret = new_secret()
    order = build_order(request, secret, site)
    if idempotency_key is None:
        await ingress.start_order(order)
        return PlacedOrder(order_id=order.order_id, secret=secret)
    keyed = KeyedOrder(order=order, fingerprint=fingerprint(request))
    reply = await ingress.start_keyed_order(key_ref(idempotency_key), keyed)
    if reply.outcome == "conflict" or reply.order_id is None:
        raise IdempotencyConflict()
    return PlacedOrder(
        order_id=reply.order_id, secret=secret if reply.outcome == "started" else None
    )


async def place(
    ingress: RestateIngress,
    admission: Admission,
    request: OrderRequest,
    idempotency_key: str | None,
    site: str | None = None,
) -> PlacedOrder:
    """Start a new order (Overloaded when too many are in progress). With an Idempotency-Key,
    the same request again is the same order (and secret), and a different request under
    that key is IdempotencyConflict."""
    admission.admit()
    try:
        placed = await start_once(ingress, request, idempotency_key, site)
    except BaseException:
        admission.abandon()
        raise
    admission.start(placed.order_id)
    return placed
