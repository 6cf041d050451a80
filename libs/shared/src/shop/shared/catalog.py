"""The product catalog: the one place that names products, prices and opening stock."""

from collections.abc import Iterable
from dataclasses import dataclass

from shop.shared.contracts.common import OrderLine


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    price_cents: int
    currency: str
    initial_stock: int


PRODUCTS: tuple[Product, ...] = (
    Product("mug-classic", "Classic mug", 1200, "eur", 50),
    Product("tee-logo", "Logo T-shirt", 2500, "eur", 30),
    Product("cap-navy", "Navy cap", 1800, "eur", 20),
    Product("sticker-pack", "Sticker pack", 400, "eur", 200),
    Product("poster-a2", "A2 poster", 1500, "eur", 10),
)

CATALOG: dict[str, Product] = {p.product_id: p for p in PRODUCTS}


def priced_lines(items: Iterable[tuple[str, int]]) -> list[OrderLine]:
    """Order lines at the catalog's names and prices for (product id, quantity) pairs of known
    products; the same product twice becomes one line."""
    quantities: dict[str, int] = {}
    for sku, quantity in items:
        quantities[sku] = quantities.get(sku, 0) + quantity
    return [
        OrderLine(
            product_id=sku,
            name=CATALOG[sku].name,
            quantity=quantity,
            unit_price_cents=CATALOG[sku].price_cents,
        )
        for sku, quantity in quantities.items()
    ]
