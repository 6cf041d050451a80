"""Restate's ingress is a way in beside the gateway: whoever reaches it must not move money,
stock or mail. Every handler that only other services call is private there; the public ones
check who asks (the order's secret, the operators' token) and take prices from the catalog."""

import uuid

import httpx
import pytest
import stripe

from shop.dev.stack import Stack

from ..invariants import money_kept, of_order
from .helpers import available, eventually, final_status, place, status_of, track

STICKERS = [{"product_id": "sticker-pack", "quantity": 1}]
ORDER = "ord_0123456789abcdef01234567"
CHARGE = {"order_id": ORDER, "payment_intent_id": "pi_x", "amount_cents": 1, "status": "x"}

# (service/key, handler, body): each an attack the audit tried through :8080.
PRIVATE = [
    ("Payments", "refund", CHARGE),
    ("Payments", "capture", CHARGE),
    ("Payments", "check", CHARGE),
    (
        "Payments",
        "authorize",
        {"order_id": ORDER, "amount_cents": 1, "currency": "eur", "payment_method": "pm_x"},
    ),
    (
        "Email",
        "send",
        {
            "order_id": ORDER,
            "to": "victim@example.com",
            "kind": "confirmation",
            "lines": [],
            "total_cents": 0,
            "currency": "eur",
        },
    ),
    ("Inventory/sticker-pack", "reserve", {"order_id": ORDER, "quantity": 1}),
    ("Inventory/sticker-pack", "release", {"order_id": ORDER}),
    ("Inventory/sticker-pack", "commit", {"order_id": ORDER}),
    ("OrderKeys/some-key", "forget", None),
    ("MailQuota/some-digest", "take", {"order_id": ORDER}),
    (f"OrderFulfilment/{ORDER}", "cancel", None),
    (f"OrderFulfilment/{ORDER}", "owner", None),
    (
        f"Orders/{ORDER}",
        "record",
        {
            "order_id": ORDER,
            "seq": 99,
            "status": "cancelled",
            "step": "x",
            "percent": 100,
            "message": "forged",
        },
    ),
    ("Payments", "refund_part", {**CHARGE, "refund_id": "ref_x", "amount_cents": 1}),
    ("Inventory/sticker-pack", "put_back", {"order_id": ORDER, "quantity": 5}),
    (
        "Refund/ref_x",
        "run",
        {
            "refund_id": "ref_x",
            "order_id": ORDER,
            "payment_intent_id": "pi_x",
            "amount_cents": 1,
            "currency": "eur",
            "reason": "forged",
            "restock": True,
            "customer_email": "victim@example.com",
            "lines": [],
        },
    ),
    (
        "Reconciliation/rec_x",
        "run",
        {
            "reconciliation_id": "rec_x",
            "since": "2026-12-01T00:00:00Z",
            "until": "2026-12-02T00:00:00Z",
        },
    ),
    ("ReconciliationSchedule/daily", "tick", "2026-12-01"),
]


def call(stack: Stack, target: str, handler: str, body: object) -> httpx.Response:
    url = f"{stack.ingress_url}/{target}/{handler}"
    return httpx.post(url, json=body, timeout=10) if body is not None else httpx.post(url)


@pytest.mark.parametrize(
    ("target", "handler", "body"), PRIVATE, ids=[f"{t}/{h}" for t, h, _ in PRIVATE]
)
def test_a_handler_only_services_call_is_refused_on_the_ingress(
    stack: Stack, target: str, handler: str, body: object
) -> None:
    response = call(stack, target, handler, body)
    assert response.status_code == 400, (response.status_code, response.text)
    assert "is not public" in response.json()["message"], response.text


def test_a_cancel_without_the_orders_secret_is_refused_and_changes_nothing(
    stack: Stack, gateway: httpx.Client
) -> None:
    order_id = place(gateway, STICKERS)
    eventually(lambda: status_of(gateway, order_id)["step"] == "reserved")
    target = f"OrderFulfilment/{order_id}"
    for secret in ("", "osec_guess", "dev-admin-token-not"):
        answer = call(stack, target, "cancel_with_secret", {"secret": secret})
        assert answer.status_code == 200 and answer.json()["outcome"] == "refused", answer.text
    assert final_status(gateway, order_id)["status"] == "completed"


def test_restock_without_the_operators_token_is_refused(
    stack: Stack, gateway: httpx.Client
) -> None:
    before = available(gateway, "poster-a2")
    for token in ("", "dev-admin-tokeN"):
        answer = call(
            stack, "Inventory/poster-a2", "restock", {"quantity": 999, "operator_token": token}
        )
        assert answer.status_code == 403, answer.text
    assert available(gateway, "poster-a2") == before


def test_a_run_started_on_the_ingress_charges_the_catalogs_prices(
    stack: Stack, gateway: httpx.Client, stripe_api: stripe.StripeClient
) -> None:
    order_id, email = f"ord_{uuid.uuid4().hex[:24]}", f"ingress-{uuid.uuid4().hex[:8]}@example.com"
    order = {
        "order_id": order_id,
        "customer_email": email,
        "lines": [
            {"product_id": "mug-classic", "name": "Free mug", "quantity": 2, "unit_price_cents": 1}
        ],
        "currency": "jpy",
        "payment_method": "pm_card_visa",
    }
    started = httpx.post(f"{stack.ingress_url}/OrderFulfilment/{order_id}/run/send", json=order)
    assert started.status_code == 202, started.text
    track(order_id, email)  # the after-test check: one mail, money kept as completed
    assert final_status(gateway, order_id)["status"] == "completed"
    assert money_kept(stripe_api, order_id) == (2400, False)
    intents = stripe_api.v1.payment_intents.list(params=of_order(order_id))
    assert [i.currency for i in intents.data] == ["eur"]


def test_the_order_books_records_need_the_operators_token(
    stack: Stack, gateway: httpx.Client
) -> None:
    """Customers and amounts: `OrderBook/find` and `details` check the token themselves."""
    order_id = place(gateway, STICKERS)
    final_status(gateway, order_id)
    for token in ("", "wrong"):
        page = call(stack, "OrderBook", "find", {"operator_token": token})
        record = call(
            stack, "OrderBook", "details", {"order_id": order_id, "operator_token": token}
        )
        assert (page.status_code, record.status_code) == (403, 403), (page.text, record.text)
        assert "@" not in page.text + record.text


def test_refunds_and_reconciliations_need_the_operators_token(stack: Stack) -> None:
    """Moving money back and reading what Stripe holds: the handlers check the token."""
    for token in ("", "wrong"):
        ask = {"refund_id": "ref_x", "reason": "forged", "operator_token": token}
        refund = call(stack, f"Orders/{ORDER}", "refund", ask)
        window = {"since": "2026-12-01T00:00:00Z", "until": "2026-12-02T00:00:00Z"}
        started = call(
            stack,
            "Reconciliations",
            "request",
            {"reconciliation_id": "rec_x", **window, "operator_token": token},
        )
        recent = call(stack, "Reconciliations", "recent", {"operator_token": token})
        statuses = (refund.status_code, started.status_code, recent.status_code)
        assert statuses == (403, 403, 403), (refund.text, started.text, recent.text)
