"""Pydantic models exchanged between the services (and journaled by Restate)."""

import base64
import json
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

OrderState = Literal["pending", "running", "completed", "failed", "cancelled"]
FINAL_STATES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


def money(cents: int, currency: str) -> str:
    """How the shop writes an amount, in pages, progress messages and mail: 12.00 EUR."""
    return f"{cents / 100:.2f} {currency.upper()}"


class OrderLine(BaseModel):
    product_id: str
    name: str
    quantity: int = Field(ge=1)
    unit_price_cents: int = Field(ge=0)

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


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


class ChargeRequest(BaseModel):
    order_id: str
    amount_cents: int = Field(ge=1)
    currency: str
    payment_method: str
    return_url: str | None = None


class Charge(BaseModel):
    """A PaymentIntent as the workflow needs it (status: requires_capture, succeeded...).
    `requires_action`: the card's bank wants the customer to confirm the payment (3-D Secure)
    at `action_url` first."""

    order_id: str
    payment_intent_id: str
    amount_cents: int
    status: str
    action_url: str | None = None


class Refund(BaseModel):
    order_id: str
    payment_intent_id: str
    action: Literal["voided", "refunded", "nothing"]


class Reservation(BaseModel):
    order_id: str
    quantity: int = Field(ge=1)


class ReservationResult(BaseModel):
    sku: str
    order_id: str
    quantity: int
    available: int


class OrderRef(BaseModel):
    order_id: str


class StockUpdate(BaseModel):
    quantity: int = Field(ge=0)


class StockLevel(BaseModel):
    """One SKU's stock. Conserved: stocked == available + reserved + sold, always."""

    sku: str
    available: int
    reserved: int
    sold: int
    stocked: int


EmailKind = Literal["confirmation", "failed", "cancelled"]


class EmailRequest(BaseModel):
    order_id: str
    to: str
    kind: EmailKind
    lines: list[OrderLine]
    total_cents: int
    currency: str
    reason: str | None = None


class EmailReceipt(BaseModel):
    message_id: str


class MailAllowance(BaseModel):
    """Whether one more mail of a throttled kind may go to an address now."""

    allowed: bool


class FulfilmentResult(BaseModel):
    order_id: str
    status: OrderState
    payment_intent_id: str | None = None
    reason: str | None = None
    last_step: str | None = Field(None, description="The last step reached before a failure.")


class OrderStatus(BaseModel):
    """Progress of one order: kept in workflow state (authoritative) and pushed to Valkey."""

    order_id: str
    status: OrderState
    step: str
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


class Restock(BaseModel):
    """An operator sets a SKU's available stock: the ADMIN_TOKEN goes with it."""

    quantity: int = Field(ge=0)
    operator_token: str


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


# The order book (the orders service, PostgreSQL): the system of record, kept for years.


class BookOrder(BaseModel):
    """What the book keeps of an order when it starts (the workflow's first entry)."""

    customer_email: str
    lines: list[OrderLine]
    currency: str
    total_cents: int
    fulfilment_version: str
    placed_at: datetime
    trace_id: str | None = None
    invocation_id: str | None = None


class BookEntry(BaseModel):
    """One status change of an order, sent by its workflow, in order (`seq` is the progress's,
    so a replay or a retry writes nothing twice and the book never goes backwards)."""

    order_id: str
    seq: int = Field(ge=1)
    status: OrderState
    step: str
    percent: int = Field(ge=0, le=100)
    message: str
    reason: str | None = None
    payment_intent_id: str | None = None
    order: BookOrder | None = None  # on the first entry only


class OrderSummary(BaseModel):
    order_id: str
    status: str
    customer_email: str
    total_cents: int
    currency: str
    created_at: datetime
    updated_at: datetime


class HistoryEntry(BaseModel):
    status: str
    step: str
    message: str
    at: datetime
    reason: str | None = None


class OrderRecord(OrderSummary):
    """An order as the book has it: its lines and every status it went through."""

    lines: list[OrderLine]
    step: str
    percent: int
    message: str
    reason: str | None = None
    payment_intent_id: str | None = None
    fulfilment_version: str
    trace_id: str | None = None
    invocation_id: str | None = None
    history: list[HistoryEntry]


class OrderFilter(BaseModel):
    """Which orders to list, newest first. `since` inclusive, `until` exclusive."""

    status: OrderState | None = None
    email: str | None = None
    product_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class OrderQuery(BaseModel):
    """A page of the book: an operator's (the ADMIN_TOKEN goes with it)."""

    filter: OrderFilter = OrderFilter()
    limit: int = Field(50, ge=1, le=1000)
    cursor: "Cursor | None" = None
    operator_token: str


class OrderPage(BaseModel):
    orders: list[OrderSummary]
    next_cursor: str | None = None


class OrderLookup(BaseModel):
    order_id: str
    operator_token: str


class BookStatus(BaseModel):
    """An order's status as the book has it (None: the book does not know the order)."""

    status: OrderStatus | None = None


class BookRecord(BaseModel):
    record: OrderRecord | None = None


def encode_cursor(created_at: datetime, order_id: str) -> str:
    """Where a page of the book ended: opaque to clients, checked when it comes back."""
    raw = json.dumps([created_at.isoformat(), order_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """ValueError for anything `encode_cursor` did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, order_id = json.loads(raw)
        at = datetime.fromisoformat(created_at)
    except (ValueError, TypeError) as e:
        raise ValueError("not a cursor this API gave out") from e
    if at.tzinfo is None or not isinstance(order_id, str):
        raise ValueError("not a cursor this API gave out")
    return at, order_id


def known_cursor(cursor: str) -> str:
    decode_cursor(cursor)
    return cursor


# Where the page before ended: only what encode_cursor made (ValueError for anything else).
Cursor = Annotated[str, AfterValidator(known_cursor)]
