"""Bad input: a clear 4xx naming the field, and no workflow started for it."""

from collections.abc import Iterator

import httpx
import pytest

from .conftest import Restate
from .helpers import final_status, place

GOOD = {
    "customer_email": "ann@example.com",
    "items": [{"product_id": "mug-classic", "quantity": 1}],
}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GOOD, "items": [{"product_id": "no-such-thing", "quantity": 1}]}, "items.0.product_id"),
        ({**GOOD, "items": [{"product_id": "mug-classic", "quantity": 0}]}, "items.0.quantity"),
        ({**GOOD, "items": [{"product_id": "mug-classic", "quantity": -3}]}, "items.0.quantity"),
        ({**GOOD, "items": [{"product_id": "mug-classic", "quantity": 10**9}]}, "items.0.quantity"),
        ({**GOOD, "items": [{"product_id": "mug-classic", "quantity": "two"}]}, "items.0.quantity"),
        ({**GOOD, "items": []}, "items"),
        ({"customer_email": "ann@example.com"}, "items"),
        ({**GOOD, "customer_email": "not-an-email"}, "customer_email"),
        ({**GOOD, "customer_email": ""}, "customer_email"),
        ({**GOOD, "payment_method": "card 4242; DROP"}, "payment_method"),
        (
            {**GOOD, "items": [{"product_id": "mug-classic", "quantity": 60}] * 2},
            "items",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_invalid_order_is_422_naming_the_field_and_starts_nothing(
    gateway: httpx.Client, restate_admin: Restate, body: dict, field: str
) -> None:
    before = restate_admin.workflow_runs()
    response = gateway.post("/api/orders", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["fields"], response.json()
    assert restate_admin.workflow_runs() == before


def test_malformed_json_is_400_and_starts_nothing(
    gateway: httpx.Client, restate_admin: Restate
) -> None:
    before = restate_admin.workflow_runs()
    response = gateway.post(
        "/api/orders", content=b'{"customer_email": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["fields"] == {"body": "not valid JSON"}
    assert restate_admin.workflow_runs() == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/orders/ord_000000000000000000000000",
        "/api/orders/ord_000000000000000000000000/events",
        "/api/orders/not-an-order-id",
        "/orders/ord_000000000000000000000000",
    ],
)
def test_unknown_order_is_404(gateway: httpx.Client, path: str) -> None:
    response = gateway.get(path)
    assert response.status_code == 404
    assert "error" in response.json()


def streamed(size: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """A body sent chunked, with no Content-Length to refuse it by."""
    for _ in range(size // chunk):
        yield b" " * chunk


@pytest.mark.parametrize(
    ("path", "size"),
    [("/api/orders", 1024**2), ("/orders", 1024**2), ("/webhooks/stripe", 8 * 1024**2)],
)
@pytest.mark.parametrize("sent", ["declared", "streamed"])
def test_a_body_beyond_the_routes_limit_is_413_and_starts_nothing(
    gateway: httpx.Client, restate_admin: Restate, path: str, size: int, sent: str
) -> None:
    before = restate_admin.workflow_runs()
    body = b" " * size if sent == "declared" else streamed(size)
    kind = "application/x-www-form-urlencoded" if path == "/orders" else "application/json"
    response = gateway.post(path, content=body, headers={"content-type": kind})
    assert response.status_code == 413, response.text
    assert "request body too large" in response.json()["error"]
    assert restate_admin.workflow_runs() == before


@pytest.mark.parametrize("seen", [b"\xb2", b"\xd9\xa3", b"12abc", b"-1", b"9" * 40])
def test_a_last_event_id_that_is_no_number_is_ignored(gateway: httpx.Client, seen: bytes) -> None:
    """`\xb2` is `²` in Latin-1, the headers' encoding: a digit to str.isdigit, not to int."""
    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 1}])
    final_status(gateway, order_id)
    for path in (f"/api/orders/{order_id}/events", f"/orders/{order_id}/stream"):
        response = gateway.get(path, headers={b"Last-Event-ID": seen})
        assert response.status_code == 200, (path, response.text)
        assert "data:" in response.text  # the final event, as for a client that saw none
