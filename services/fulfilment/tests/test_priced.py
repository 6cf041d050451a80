"""A run takes names, prices and currency from the catalog, whatever its input says."""

import pytest
from restate import TerminalError

from shop.fulfilment.workflow import priced
from shop.shared.contracts.common import OrderLine
from shop.shared.contracts.fulfilment import Order


def order(*lines: tuple[str, int]) -> Order:
    return Order(
        order_id="ord_0123456789abcdef01234567",
        customer_email="ann@example.com",
        lines=[
            OrderLine(product_id=sku, name="Free", quantity=n, unit_price_cents=1)
            for sku, n in lines
        ],
        currency="jpy",
        payment_method="pm_card_visa",
    )


def test_the_catalog_sets_names_prices_and_currency() -> None:
    got = priced(order(("mug-classic", 2), ("cap-navy", 1)))
    assert [(line.name, line.unit_price_cents) for line in got.lines] == [
        ("Classic mug", 1200),
        ("Navy cap", 1800),
    ]
    assert (got.total_cents, got.currency) == (4200, "eur")


def test_a_product_twice_is_one_line() -> None:
    got = priced(order(("mug-classic", 2), ("mug-classic", 3)))
    assert [(line.product_id, line.quantity) for line in got.lines] == [("mug-classic", 5)]


def test_an_unknown_product_ends_the_run() -> None:
    with pytest.raises(TerminalError, match="unknown products"):
        priced(order(("mug-classic", 1), ("free-money", 1)))
