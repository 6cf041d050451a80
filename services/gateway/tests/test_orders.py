import pytest
from pydantic import ValidationError

from shop.gateway.orders import OrderRequest, build_order, order_id_for


def request(**overrides: object) -> OrderRequest:
    body = {
        "customer_email": "ann@example.com",
        "items": [{"product_id": "mug-classic", "quantity": 2}],
    }
    return OrderRequest.model_validate({**body, **overrides})


def error_fields(**overrides: object) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        request(**overrides)
    return {".".join(map(str, e["loc"])) for e in caught.value.errors()}


def test_prices_and_names_come_from_the_catalog() -> None:
    order = build_order("ord_x", request())
    assert [(line.name, line.unit_price_cents) for line in order.lines] == [("Classic mug", 1200)]
    assert order.total_cents == 2400 and order.currency == "eur"


def test_the_same_product_twice_is_one_line() -> None:
    items = [
        {"product_id": "mug-classic", "quantity": 2},
        {"product_id": "mug-classic", "quantity": 3},
    ]
    order = build_order("ord_x", request(items=items))
    assert [(line.product_id, line.quantity) for line in order.lines] == [("mug-classic", 5)]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"items": [{"product_id": "nope", "quantity": 1}]}, "items.0.product_id"),
        ({"items": [{"product_id": "mug-classic", "quantity": 0}]}, "items.0.quantity"),
        ({"items": [{"product_id": "mug-classic", "quantity": 101}]}, "items.0.quantity"),
        ({"items": []}, "items"),
        ({"items": [{"product_id": "mug-classic", "quantity": 51}] * 2}, "items"),
        ({"customer_email": "nope"}, "customer_email"),
        ({"payment_method": "4242 4242"}, "payment_method"),
        ({"unit_price": 1}, "unit_price"),
    ],
)
def test_invalid_requests_name_the_field(overrides: dict[str, object], field: str) -> None:
    assert field in error_fields(**overrides)


def test_order_id_is_stable_per_idempotency_key() -> None:
    assert order_id_for("abc") == order_id_for("abc") != order_id_for("abd")
    assert order_id_for(None) != order_id_for(None)
