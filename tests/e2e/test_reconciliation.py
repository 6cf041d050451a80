"""The reconciliation of Stripe with the order book: nothing to report after orders of every
kind, and each kind of discrepancy reported with its order and amounts once planted at Stripe
or in the book; planned daily on a durable timer; bad input refused."""

import time
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
import psycopg
import pytest
import stripe

from shop.dev.stack import Stack

from ..invariants import booked
from .conftest import Restate
from .helpers import PLACED, cancel, customer, eventually, final_status, place
from .test_payment_auth import bank_answers, waiting_for_the_bank

STICKERS = [{"product_id": "sticker-pack", "quantity": 3}]  # 12.00 EUR


def next_second() -> datetime:
    """The start of the next whole second, once it has come: Stripe's `created` is in seconds,
    so a window from there holds nothing an earlier test made."""
    start = datetime.fromtimestamp(int(time.time()) + 1, UTC)
    eventually(lambda: datetime.now(UTC) >= start, timeout=5, what="the next second")
    return start


def reconcile(gateway: httpx.Client, admin: dict[str, str], since: datetime) -> dict:
    """A reconciliation of [since, now], once it has ended."""
    until = next_second()
    window = {"since": since.isoformat(), "until": until.isoformat()}
    answer = gateway.post("/api/admin/reconciliations", json=window, headers=admin)
    assert answer.status_code == 202, answer.text
    url = answer.json()["status_url"]

    def ended() -> dict | None:
        report = gateway.get(url, headers=admin).json()
        return report if report["status"] != "running" else None

    return eventually(ended, timeout=60, what="the reconciliation's report")


def settled_in_book(gateway: httpx.Client, admin: dict[str, str], order_id: str) -> dict:
    return eventually(lambda: booked(gateway, admin, order_id), what=f"{order_id} in the book")


def refund(gateway: httpx.Client, admin: dict[str, str], order_id: str, **body: object) -> None:
    answer = gateway.post(
        f"/api/admin/orders/{order_id}/refunds",
        json={"reason": "goodwill", **body},
        headers=admin,
    )
    assert answer.status_code == 202, answer.text
    url = answer.json()["status_url"]
    eventually(lambda: gateway.get(url, headers=admin).json()["status"] == "succeeded")


def test_a_mixed_run_reconciles_with_nothing_to_report(
    stack: Stack, gateway: httpx.Client, admin: dict[str, str]
) -> None:
    since = next_second()
    completed = place(gateway, STICKERS)
    declined = place(gateway, STICKERS, payment_method="pm_card_chargeDeclined")
    cancelled = place(gateway, STICKERS)
    assert cancel(gateway, cancelled).status_code in (200, 202)
    secure = place(gateway, STICKERS, payment_method="pm_card_threeDSecure2Required")
    bank_answers(stack, waiting_for_the_bank(gateway, secure), "complete")
    partly, fully = place(gateway, STICKERS), place(gateway, STICKERS)
    orders = [completed, declined, cancelled, secure, partly, fully]
    for order_id in orders:
        final_status(gateway, order_id, timeout=60)
        settled_in_book(gateway, admin, order_id)
    refund(gateway, admin, partly, amount_cents=500)
    refund(gateway, admin, fully, restock=True)

    report = reconcile(gateway, admin, since)
    assert report["status"] == "completed", report
    assert report["discrepancies"] == []
    assert report["checked_orders"] == len(orders)
    assert report["checked_intents"] == len(orders)  # one payment each, declined ones too
    assert report["since"].startswith(since.strftime("%Y-%m-%dT%H:%M:%S"))


def untrack(order_id: str) -> None:
    """A test made this order's money untrue at Stripe on purpose: the after-test check,
    which holds every order to Stripe = book, leaves it to the reconciliation."""
    PLACED[:] = [(o, e) for o, e in PLACED if o != order_id]


def book_url(stack: Stack) -> str:
    return stack.book.url("migrator")


def paid_at_stripe(
    stripe_api: stripe.StripeClient,
    order_id: str,
    cents: int,
    capture: Literal["automatic", "manual"],
) -> stripe.PaymentIntent:
    """A payment made at Stripe directly, not by the shop, naming `order_id`."""
    return stripe_api.v1.payment_intents.create(
        params={
            "amount": cents,
            "currency": "eur",
            "payment_method": "pm_card_visa",
            "capture_method": capture,
            "confirm": True,
            "metadata": {"order_id": order_id},
        }
    )


def test_each_kind_of_discrepancy_is_reported_with_its_order_and_amounts(
    stack: Stack,
    gateway: httpx.Client,
    admin: dict[str, str],
    stripe_api: stripe.StripeClient,
) -> None:
    since = next_second()
    # A payment captured at Stripe for an order the book does not have.
    ghost = "ord_" + "0" * 23 + "1"
    captured = paid_at_stripe(stripe_api, ghost, 999, capture="automatic")
    assert captured.status == "succeeded"
    # A refund made at Stripe directly, which the book knows nothing of.
    refunded = place(gateway, STICKERS)
    final_status(gateway, refunded)
    intent = settled_in_book(gateway, admin, refunded)["payment_intent_id"]
    stripe_api.v1.refunds.create(params={"payment_intent": intent, "amount": 300})
    untrack(refunded)
    # An order the book has as completed whose payment was only ever held.
    held_order = "ord_" + "0" * 23 + "2"
    held = paid_at_stripe(stripe_api, held_order, 1800, capture="manual")
    assert held.status == "requires_capture"
    with psycopg.connect(book_url(stack), password=stack.book.password("migrator")) as db:
        db.execute(
            "INSERT INTO orders (order_id, customer_email, currency, total_cents,"
            " fulfilment_version, payment_intent_id, status, step, percent, message, seq,"
            " created_at, updated_at) VALUES (%s, %s, 'eur', 1800, 'v1', %s, 'completed',"
            " 'completed', 100, 'planted by a test', 9, now(), now())",
            (held_order, customer(), held.id),
        )

    report = reconcile(gateway, admin, since)
    assert report["status"] == "completed", report
    found = sorted(
        (d["kind"], d["order_id"], d["payment_intent"], d["expected_cents"], d["actual_cents"])
        for d in report["discrepancies"]
    )
    assert found == sorted(
        [
            ("charge_without_order", ghost, captured.id, 0, 999),
            ("amount_mismatch", refunded, intent, 1200, 900),
            ("order_without_charge", held_order, held.id, 1800, 0),
            ("open_hold", held_order, held.id, 0, 1800),
        ]
    )
    assert report["checked_intents"] == 3
    # The operator's page shows the run and what it found.
    page = gateway.get("/admin", headers=admin).text
    assert report["reconciliation_id"] in page and "open_hold" in page and held_order in page


BAD_WINDOWS = [
    ({"until": "2026-12-02"}, "since"),
    ({"since": "2026-12-01"}, "until"),
    ({"since": "yesterday", "until": "2026-12-02"}, "since"),
    ({"since": "2026-12-01", "until": "0.5"}, "until"),
    ({"since": "2026-12-02", "until": "2026-12-01"}, "until"),
    ({"since": "2026-10-01", "until": "2026-12-01"}, "until"),  # more than 31 days
    ({"since": "2026-12-01", "until": "2026-12-02", "limit": 5}, "limit"),
]


@pytest.mark.parametrize(("body", "field"), BAD_WINDOWS)
def test_a_bad_window_is_422_naming_the_field(
    gateway: httpx.Client, admin: dict[str, str], body: dict, field: str
) -> None:
    answer = gateway.post("/api/admin/reconciliations", json=body, headers=admin)
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["fields"], answer.json()


def test_reports_are_for_operators_and_unknown_ones_are_404(
    gateway: httpx.Client, admin: dict[str, str]
) -> None:
    window = {"since": "2026-12-01", "until": "2026-12-02"}
    assert gateway.post("/api/admin/reconciliations", json=window).status_code == 401
    assert gateway.get("/api/admin/reconciliations/rec_nope").status_code == 401
    assert gateway.get("/api/admin/reconciliations/rec_nope", headers=admin).status_code == 404
    assert gateway.get("/api/admin/reconciliations/x y", headers=admin).status_code == 404


def test_the_daily_run_is_planned_on_a_durable_timer(restate_admin: Restate) -> None:
    """The gateway planned it when it found the shop ready: the schedule's next day, and its
    delayed message to itself for then (a Restate invocation, scheduled)."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()

    def planned() -> list[dict] | None:
        rows = restate_admin.query(
            "SELECT value_utf8 FROM state WHERE service_name = 'ReconciliationSchedule'"
            " AND service_key = 'daily' AND key = 'next_day'"
        )
        return rows or None

    next_day = eventually(planned, what="the daily reconciliation planned")[0]["value_utf8"]
    assert next_day.strip('"') in (tomorrow, datetime.now(UTC).date().isoformat())
    ticks = restate_admin.query(
        "SELECT status FROM sys_invocation WHERE target = 'ReconciliationSchedule/daily/tick'"
    )
    assert [t["status"] for t in ticks] == ["scheduled"], ticks
