"""What a customer may ask for, validated at the edge, and how it becomes an Order.

Prices, names and currency come from the catalog, never from the client.
"""

import hashlib
import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, field_validator

from shop.shared.catalog import CATALOG
from shop.shared.models import Order, OrderLine

MAX_QUANTITY = 100


def known_product(product_id: str) -> str:
    if product_id not in CATALOG:
        raise ValueError(f"unknown product {product_id!r}")
    return product_id


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: Annotated[str, AfterValidator(known_product)]
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


def order_id_for(idempotency_key: str | None) -> str:
    """The same Idempotency-Key always names the same order, so a resubmit starts nothing new."""
    if idempotency_key is None:
        return f"ord_{uuid.uuid4().hex[:24]}"
    return f"ord_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]}"


def order_lines(items: list[OrderItem]) -> list[OrderLine]:
    """Catalog lines for the items; the same product twice becomes one line."""
    quantities: dict[str, int] = {}
    for item in items:
        quantities[item.product_id] = quantities.get(item.product_id, 0) + item.quantity
    return [
        OrderLine(
            product_id=sku,
            name=CATALOG[sku].name,
            quantity=quantity,
            unit_price_cents=CATALOG[sku].price_cents,
        )
        for sku, quantity in quantities.items()
    ]


def build_order(order_id: str, request: OrderRequest) -> Order:
    lines = order_lines(request.items)
    return Order(
        order_id=order_id,
        customer_email=str(request.customer_email),
        lines=lines,
        currency=CATALOG[lines[0].product_id].currency,
        payment_method=request.payment_method,
    )
