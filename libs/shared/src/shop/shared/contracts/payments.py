"""The payments service's contract (Payments): what its handlers take and answer. Owned by the
payments team; contracts/Payments.json is its recorded shape."""

from typing import Literal

from pydantic import BaseModel, Field


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


RefundAction = Literal["voided", "refunded", "nothing"]


class Refund(BaseModel):
    """What a failed or cancelled order's money came to (compensation)."""

    order_id: str
    payment_intent_id: str
    action: RefundAction


class RefundCharge(BaseModel):
    """Give back part of a captured payment (Payments/refund_part)."""

    order_id: str
    refund_id: str
    payment_intent_id: str
    amount_cents: int = Field(ge=1)


class StripeRefund(BaseModel):
    refund_id: str
    stripe_refund_id: str
    amount_cents: int
    status: str  # Stripe's: succeeded, pending (on its way), failed, canceled


class IntentQuery(BaseModel):
    """A page of Stripe's PaymentIntents created in [created_gte, created_lt) (Unix seconds)."""

    created_gte: int
    created_lt: int
    starting_after: str | None = None
    limit: int = Field(100, ge=1, le=100)


class IntentRef(BaseModel):
    payment_intent_id: str


class StripeIntent(BaseModel):
    """A PaymentIntent's money as Stripe has it."""

    payment_intent_id: str
    order_id: str | None  # its metadata's: None for a payment the shop did not make
    status: str
    amount_cents: int
    captured_cents: int
    refunded_cents: int

    @property
    def kept_cents(self) -> int:
        return self.captured_cents - self.refunded_cents


class IntentPage(BaseModel):
    intents: list[StripeIntent]
    has_more: bool
