"""What more than one service's contract is made of: an order's lines, a reference to an order,
how money is written."""

from pydantic import BaseModel, Field


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


class OrderRef(BaseModel):
    order_id: str
