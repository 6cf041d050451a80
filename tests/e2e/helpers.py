"""Bounded waits and small readers shared by the e2e tests."""

import re
import uuid
from typing import Any, TypedDict

import httpx

from shop.dev.eventually import eventually as eventually  # the one way to wait, for e2e tests
from shop.dev.stack import Stack

FINAL = {"completed", "failed", "cancelled"}
# Every order a test places (order id, customer email): the invariant check reads it.
PLACED: list[tuple[str, str]] = []
# The secret each order placed through the API answered with: what cancelling it takes.
SECRETS: dict[str, str] = {}


class OrderBody(TypedDict):
    """POST /api/orders's body, as most tests send it."""

    customer_email: str
    items: list[dict[str, Any]]


def track(order_id: str, email: str) -> str:
    PLACED.append((order_id, email))
    return order_id


def matched(pattern: str, text: str) -> str:
    """The first group of the pattern's first match in the text (which must have one)."""
    match = re.search(pattern, text)
    assert match is not None, f"no {pattern!r} in {text!r}"
    return match[1]


def customer() -> str:
    return f"buyer-{uuid.uuid4().hex[:8]}@example.com"


def place(gateway: httpx.Client, items: list[dict[str, Any]], **extra: Any) -> str:
    body = {"customer_email": extra.pop("email", None) or customer(), "items": items, **extra}
    response = gateway.post("/api/orders", json=body)
    assert response.status_code == 202, response.text
    SECRETS[response.json()["order_id"]] = response.json()["order_secret"]
    return track(response.json()["order_id"], body["customer_email"])


def cancel(gateway: httpx.Client, order_id: str) -> httpx.Response:
    """Cancel as the customer who placed the order (with its secret)."""
    headers = {"Order-Secret": SECRETS[order_id]}
    return gateway.post(f"/api/orders/{order_id}/cancel", headers=headers)


def status_of(gateway: httpx.Client, order_id: str) -> dict[str, Any]:
    return gateway.get(f"/api/orders/{order_id}").json()


def final_status(gateway: httpx.Client, order_id: str, timeout: float = 30) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = gateway.get(f"/api/orders/{order_id}").json()
        return body if body.get("status") in FINAL else None

    return eventually(done, timeout)


def available(gateway: httpx.Client, sku: str) -> int:
    products = gateway.get("/api/products").json()
    return next(p["available"] for p in products if p["product_id"] == sku)


def scraped(stack: Stack, service: str) -> dict[str, float]:
    """A process's /metrics as Prometheus reads them: {'name{labels}': value}."""
    text = httpx.get(f"http://127.0.0.1:{getattr(stack.ports, service)}/metrics", timeout=10).text
    series = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return {name: float(value) for name, value in series}
