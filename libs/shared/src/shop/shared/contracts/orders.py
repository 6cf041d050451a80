"""The orders service's contract (Orders, OrderBook, Refund, Reconciliation, Reconciliations,
ReconciliationSchedule): the order book's records, refunds and reconciliations, and the
operators' actions. Owned by the orders team; contracts/ has its recorded shape."""

import base64
import json
from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, Field

from shop.shared.contracts.common import OrderLine
from shop.shared.contracts.fulfilment import OrderState, OrderStatus

# An order's status in the book: a completed order may have had money back since.
BookState = Literal[
    "pending", "running", "completed", "failed", "cancelled", "partially_refunded", "refunded"
]
BOOK_STATES: tuple[str, ...] = get_args(BookState)
REFUNDED_STATES: frozenset[str] = frozenset({"partially_refunded", "refunded"})


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
    """An order as the book has it: its lines, every status it went through, its refunds."""

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
    refunds: list["RefundEntry"] = []
    refunded_cents: int = 0  # of the refunds that succeeded
    actions: list["ActionRecord"] = []  # what operators did to its invocations


class OrderFilter(BaseModel):
    """Which orders to list, newest first. `since` inclusive, `until` exclusive."""

    status: BookState | None = None
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
RefundState = Literal["pending", "succeeded", "failed"]


class RefundAsk(BaseModel):
    """An operator's refund of one order (Orders/<order id>/refund), checked against the book:
    `amount_cents` None is all that is left; the ADMIN_TOKEN goes with it."""

    refund_id: str = Field(description="The new refund's id, unless the key had one already.")
    amount_cents: int | None = Field(None, ge=1)
    reason: str = Field(min_length=1, max_length=500)
    restock: bool = False
    # With an Idempotency-Key: its digest, and SHA-256 of the request body it came with.
    key: str | None = None
    fingerprint: str | None = None
    operator_token: str


class RefundOrder(BaseModel):
    """The Refund workflow's input: what it gives back and to whom."""

    refund_id: str
    order_id: str
    payment_intent_id: str
    amount_cents: int = Field(ge=1)
    currency: str
    reason: str
    restock: bool  # the order's lines go back on the shelf (at most one refund of it does)
    customer_email: str
    lines: list[OrderLine]


RefundRefusal = Literal["conflict", "unknown_order", "not_completed", "too_much"]


class RefundOpened(BaseModel):
    """`started` (a new refund, `order` is its workflow's input), `replayed` (the same request
    under its Idempotency-Key: the same refund), or why nothing was started."""

    outcome: Literal["started", "replayed"] | RefundRefusal
    refund_id: str | None = None
    message: str = ""
    order: RefundOrder | None = None


class RefundOutcome(BaseModel):
    """How a refund ended: what the book records."""

    refund_id: str
    order_id: str
    status: RefundState
    stripe_refund_id: str | None = None
    failure_reason: str | None = None


class RefundEntry(BaseModel):
    """A refund as the book has it."""

    refund_id: str
    order_id: str
    amount_cents: int
    currency: str
    reason: str
    restock: bool
    status: RefundState
    failure_reason: str | None = None
    stripe_refund_id: str | None = None
    requested_at: datetime
    updated_at: datetime


class RefundLookup(BaseModel):
    order_id: str
    refund_id: str
    operator_token: str


class BookRefund(BaseModel):
    refund: RefundEntry | None = None


class PublicRefund(BaseModel):
    """What the customer's page shows of a refund (not the operator's reason)."""

    amount_cents: int
    currency: str
    status: RefundState
    requested_at: datetime


class PublicRefunds(BaseModel):
    refunds: list[PublicRefund]


class BookMoney(BaseModel):
    """An order's money as the book has it."""

    order_id: str
    status: str
    total_cents: int
    refunded_cents: int
    payment_intent_id: str | None = None


DiscrepancyKind = Literal[
    "charge_without_order", "order_without_charge", "amount_mismatch", "open_hold"
]


class Discrepancy(BaseModel):
    """Where Stripe and the book disagree: `expected_cents` is the book's, `actual_cents`
    Stripe's (money kept; for an open hold, the amount held)."""

    kind: DiscrepancyKind
    order_id: str | None
    payment_intent: str | None
    expected_cents: int
    actual_cents: int


class ReconciliationWindow(BaseModel):
    """[since, until): what the Reconciliation workflow compares."""

    reconciliation_id: str
    since: datetime
    until: datetime


class ReconciliationAsk(ReconciliationWindow):
    operator_token: str


ReconciliationState = Literal["running", "completed", "failed"]


class ReconciliationReport(BaseModel):
    reconciliation_id: str
    status: ReconciliationState
    since: datetime
    until: datetime
    checked_orders: int = 0
    checked_intents: int = 0
    discrepancies: list[Discrepancy] = []
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ReconciliationLookup(BaseModel):
    reconciliation_id: str
    operator_token: str


class RecentReconciliations(BaseModel):
    limit: int = Field(10, ge=1, le=100)
    operator_token: str


class BookReconciliation(BaseModel):
    report: ReconciliationReport | None = None


class ReconciliationList(BaseModel):
    reports: list[ReconciliationReport]


class InvocationInfo(BaseModel):
    invocation_id: str
    target: str  # service/key/handler
    status: str  # Restate's: running, backing-off, paused, suspended, ...
    retry_count: int | None = None
    last_failure: str | None = None


class OrderInvocations(BaseModel):
    """The order's run and the calls it made that have not ended."""

    invocations: list[InvocationInfo]


OperatorActionKind = Literal["resume", "retry", "kill"]


class OperatorAction(BaseModel):
    """An operator acts on one of the order's invocations (`retry`: a backing-off one now)."""

    order_id: str
    invocation_id: str
    action: OperatorActionKind
    actor: str = Field(description="Which admin credential acted (never the credential).")
    operator_token: str


class ActionRecord(BaseModel):
    """An operator's action, as the book keeps it with the order."""

    action: OperatorActionKind
    invocation_id: str
    target: str
    actor: str
    outcome: str
    at: datetime


OrderRecord.model_rebuild()  # its refunds and actions are defined after it
