"""What the JSON API answers on success, for the routes' response models (and so the OpenAPI
document). The bodies a service's contract already has (shop.shared.contracts: a page of the
book, an order's record, a refund, a report...) are answered as they are; here are the ones
the gateway shapes itself. (Its error bodies are responses.py's.)

A key the answer leaves out rather than sends as null is `omitted` below: left out of the JSON,
and optional, never null, in the document. Every other key is always there (required in the
document, null where it says so)."""

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from shop.shared.catalog import Product
from shop.shared.contracts.fulfilment import FulfilmentResult, OrderStatus
from shop.shared.contracts.inventory import StockLevel

# A key with a default is in every answer all the same: required in the document.
ALWAYS_THERE = ConfigDict(json_schema_serialization_defaults_required=True)


def _is_none(value: object) -> bool:
    return value is None


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # an omitted key has no value at all, not a null


def omitted(description: str) -> Any:
    """A key the answer has only when it has a value (never `null`)."""
    return Field(None, exclude_if=_is_none, json_schema_extra=_no_default, description=description)


class OrderPlaced(BaseModel):
    """`POST /api/orders`: where to follow the order, and the secret that cancels it."""

    model_config = ALWAYS_THERE

    order_id: str
    order_secret: str | SkipJsonSchema[None] = omitted(
        "What cancelling the order takes (the `Order-Secret` header): given only to the "
        "request that placed it, not to a retry with the same Idempotency-Key."
    )
    status_url: str
    events_url: str
    cancel_url: str

    @classmethod
    def of(cls, order_id: str, secret: str | None) -> Self:
        return cls(
            order_id=order_id,
            order_secret=secret,
            status_url=f"/api/orders/{order_id}",
            events_url=f"/api/orders/{order_id}/events",
            cancel_url=f"/api/orders/{order_id}/cancel",
        )


class PublicResult(FulfilmentResult):
    """How the order ended, as anyone with its id may see it: without the payment's id."""

    model_config = ALWAYS_THERE

    payment_intent_id: SkipJsonSchema[str | None] = Field(None, exclude=True)


class OrderProgress(OrderStatus):
    """`GET /api/orders/{id}`: the order's status, public to anyone with its id. Not the
    progress's seq (the SSE event id), nor the payment's id."""

    model_config = ALWAYS_THERE

    seq: SkipJsonSchema[int] = Field(0, exclude=True)
    result: PublicResult | SkipJsonSchema[None] = omitted("How it ended, once it has.")
    action_url: str | SkipJsonSchema[None] = omitted(
        "Where the customer confirms the payment with their bank, while the order waits for it."
    )
    reason: str | SkipJsonSchema[None] = omitted(
        "Why it failed or was cancelled (the result's reason), when it says."
    )

    @classmethod
    def of(cls, status: OrderStatus) -> Self:
        ended = status.result
        return cls.model_validate(
            {
                **{name: getattr(status, name) for name in OrderStatus.model_fields},
                "result": None
                if ended is None
                else PublicResult.model_validate(ended.model_dump()),
                "reason": (ended.reason or None) if ended else None,
            }
        )


class Cancelled(BaseModel):
    """The order was cancelled already."""

    model_config = ALWAYS_THERE

    order_id: str
    status: Literal["cancelled"] = "cancelled"


class Cancelling(BaseModel):
    """The cancellation unwinds the order; `status_url` says when it is done."""

    model_config = ALWAYS_THERE

    order_id: str
    status: Literal["cancelling"] = "cancelling"
    status_url: str


class ProductOnSale(BaseModel):
    """`GET /api/products`: a product of the catalog, its price and its stock
    (`stocked = available + reserved + sold`)."""

    model_config = ALWAYS_THERE

    product_id: str
    name: str
    price_cents: int
    currency: str
    available: int
    reserved: int
    sold: int
    stocked: int

    @classmethod
    def of(cls, product: Product, stock: StockLevel) -> Self:
        return cls(
            product_id=product.product_id,
            name=product.name,
            price_cents=product.price_cents,
            currency=product.currency,
            **stock.model_dump(exclude={"sku"}),  # available, reserved, sold, stocked
        )


class RefundStarted(BaseModel):
    """`POST /api/admin/orders/{id}/refunds`: the refund runs on its own; `status_url` says how
    it ends."""

    model_config = ALWAYS_THERE

    refund_id: str
    order_id: str
    status_url: str


class ReconciliationStarted(BaseModel):
    """`POST /api/admin/reconciliations`: the run goes on by itself; `status_url` has its
    report."""

    model_config = ALWAYS_THERE

    reconciliation_id: str
    status_url: str


class Alive(BaseModel):
    """`GET /healthz`: the process answers (liveness)."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """`GET /readyz`: ready (200) once Restate answers and every service the gateway calls is
    registered, else waiting (503, `missing` names them). Live updates are best effort
    (clients fall back to polling), so they do not decide readiness; they are reported for
    operators."""

    model_config = ALWAYS_THERE

    status: Literal["ready", "waiting"]
    missing: list[str] | None = omitted("The services not registered yet (when waiting).")
    live_updates: Literal["connected", "reconnecting"]
