"""Pydantic models exchanged between the services (and journaled by Restate)."""

from typing import Literal

from pydantic import BaseModel, Field

OrderState = Literal["pending", "running", "completed", "failed", "cancelled"]
FINAL_STATES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


class OrderLine(BaseModel):
    product_id: str
    name: str
    quantity: int = Field(ge=1)
    unit_price_cents: int = Field(ge=0)


class Order(BaseModel):
    order_id: str
    customer_email: str
    lines: list[OrderLine] = Field(min_length=1)
    currency: str
    payment_method: str

    @property
    def total_cents(self) -> int:
        return sum(line.quantity * line.unit_price_cents for line in self.lines)


class ChargeRequest(BaseModel):
    order_id: str
    amount_cents: int = Field(ge=1)
    currency: str
    payment_method: str


class Charge(BaseModel):
    payment_intent_id: str
    amount_cents: int
    status: str


class Reservation(BaseModel):
    order_id: str
    quantity: int = Field(ge=1)


class ReservationResult(BaseModel):
    sku: str
    order_id: str
    quantity: int
    available: int


class StockUpdate(BaseModel):
    quantity: int = Field(ge=0)


class StockLevel(BaseModel):
    sku: str
    available: int
    reserved: int


class EmailRequest(BaseModel):
    order_id: str
    to: str
    kind: Literal["confirmation"] = "confirmation"
    lines: list[OrderLine]
    total_cents: int
    currency: str


class EmailReceipt(BaseModel):
    message_id: str


class FulfilmentResult(BaseModel):
    order_id: str
    status: OrderState
    payment_intent_id: str | None = None
    reason: str | None = None


class OrderStatus(BaseModel):
    """Progress of one order: kept in workflow state (authoritative) and pushed to Valkey."""

    order_id: str
    status: OrderState
    step: str
    percent: int = Field(ge=0, le=100)
    message: str
    seq: int = Field(ge=0, description="Position in the order's progress; the SSE event id.")
    result: FulfilmentResult | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES
