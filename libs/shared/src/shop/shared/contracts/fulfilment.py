"""The fulfilment service's contract (OrderFulfilment, OrderKeys): the order, its status and
outcome, and what its handlers take and answer. Owned by the fulfilment team;
contracts/OrderFulfilment.json and OrderKeys.json are its recorded shape."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from shop.shared.contracts.common import OrderLine

OrderState = Literal["pending", "running", "completed", "failed", "cancelled"]
FINAL_STATES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
# An order's steps, in the order a run takes them: `pending` until it reports, then
# `authenticating` only when the bank asks for 3-D Secure, and `reserved` while the customer
# may cancel. A run that does not complete ends at `failed` or `cancelled`. A new step is an
# output a running gateway may not know: add it as docs/deploy.md says (expand, migrate).
Step = Literal[
    "pending",
    "received",
    "authenticating",
    "authorized",
    "reserved",
    "capturing",
    "charged",
    "completed",
    "failed",
    "cancelled",
]


class Order(BaseModel):
    order_id: str
    customer_email: str
    lines: list[OrderLine] = Field(min_length=1)
    currency: str
    payment_method: str
    # The trace of the request that placed the order, for links to it (Jaeger).
    trace_id: str | None = None
    # SHA-256 of the order's secret: whoever shows the secret may change the order (cancel).
    # The secret itself is handed to the customer once and never kept with the order.
    secret_digest: str | None = None
    # The order's page, where the customer's bank sends them back after a 3-D Secure check.
    return_url: str | None = None
    # When the customer placed it (the gateway's clock): the order book's created_at.
    placed_at: datetime | None = None

    @property
    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)


class FulfilmentResult(BaseModel):
    order_id: str
    status: OrderState
    payment_intent_id: str | None = None
    reason: str | None = None
    last_step: Step | None = Field(None, description="The last step reached before a failure.")


class OrderStatus(BaseModel):
    """Progress of one order: kept in workflow state (authoritative) and pushed to Valkey."""

    order_id: str
    status: OrderState
    step: Step
    percent: int = Field(ge=0, le=100)
    message: str
    seq: int = Field(ge=0, description="Position in the order's progress; the SSE event id.")
    cancellable: bool = False
    result: FulfilmentResult | None = None
    trace_id: str | None = None
    # Where the customer confirms the payment with their bank, while the order waits for it.
    action_url: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES


CancelOutcome = Literal["cancelled", "fulfilling", "failed"]


class CancelRequest(BaseModel):
    """A cancel carries its right to cancel: the order's secret, or an operator's token."""

    secret: str


class CancelReply(BaseModel):
    """What a cancel request came to: `cancelled`, too late (`fulfilling`, `failed`), or
    `refused` (neither the order's secret nor an operator's token: nothing was done)."""

    order_id: str
    outcome: CancelOutcome | Literal["refused"]


class PaymentEvent(BaseModel):
    """A Stripe event about an order's PaymentIntent, verified by the gateway: it only wakes
    the order, which then asks Stripe how the payment stands."""

    event_id: str
    type: str


class KeyedOrder(BaseModel):
    """An order placed with an Idempotency-Key: what the key's record keeps if it is new.
    Not the order's secret: Restate keeps only its digest (in the order)."""

    order: Order
    fingerprint: str = Field(description="SHA-256 of the request body the key was sent with.")


class KeyedOrderReply(BaseModel):
    """`started` (a new order), `replayed` (the same request again: the same order, without
    its secret, which went to the first request only) or `conflict` (the key was used for
    another request: nothing about that order is told)."""

    outcome: Literal["started", "replayed", "conflict"]
    order_id: str | None = None
