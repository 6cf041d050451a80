import re

import pytest
from pydantic import ValidationError

from shop.gateway.orders import (
    ORDER_ID_PATTERN,
    OrderRequest,
    build_order,
    fingerprint,
    new_secret,
)
from shop.shared.ownership import secret_matches, sha256


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
    order = build_order(request(), "osec_x")
    assert [(line.name, line.unit_price_cents) for line in order.lines] == [("Classic mug", 1200)]
    assert order.total_cents == 2400 and order.currency == "eur"


def test_the_same_product_twice_is_one_line() -> None:
    items = [
        {"product_id": "mug-classic", "quantity": 2},
        {"product_id": "mug-classic", "quantity": 3},
    ]
    order = build_order(request(items=items), "osec_x")
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


def test_order_ids_are_random_and_keep_only_the_secrets_digest() -> None:
    first, second = build_order(request(), "osec_a"), build_order(request(), "osec_a")
    assert first.order_id != second.order_id
    assert re.fullmatch(ORDER_ID_PATTERN, first.order_id)
    assert first.secret_digest == sha256("osec_a") and "osec_a" not in first.model_dump_json()


def test_only_the_orders_own_secret_matches() -> None:
    secret = new_secret()
    assert secret_matches(secret, sha256(secret))
    assert not secret_matches(new_secret(), sha256(secret))
    assert not secret_matches(None, sha256(secret))
    assert not secret_matches("", sha256(""))
    assert not secret_matches(secret, "")


def test_a_request_s_fingerprint_is_its_content() -> None:
    assert fingerprint(request()) == fingerprint(request())
    assert fingerprint(request()) != fingerprint(request(customer_email="eve@example.com"))
