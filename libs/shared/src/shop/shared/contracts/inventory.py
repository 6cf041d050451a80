"""The inventory service's contract (Inventory): what its handlers take and answer. Owned by the
inventory team; contracts/Inventory.json is its recorded shape."""

from pydantic import BaseModel, Field


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
    """One SKU's stock. Conserved: stocked == available + reserved + sold, always."""

    sku: str
    available: int
    reserved: int
    sold: int
    stocked: int


class Restock(BaseModel):
    """An operator sets a SKU's available stock: the ADMIN_TOKEN goes with it."""

    quantity: int = Field(ge=0)
    operator_token: str


class ItemsBack(BaseModel):
    """A refunded order's items, back on the shelf (Inventory/<sku>/put_back)."""

    order_id: str
    quantity: int = Field(ge=1)
