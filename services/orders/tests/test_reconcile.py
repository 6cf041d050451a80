"""The reconciliation's rules, one kind of discrepancy at a time (no Stripe, no book)."""

from datetime import UTC, date, datetime

from shop.orders.reconcile import compare
from shop.orders.reconciliation import daily_window
from shop.shared.contracts.orders import BookMoney
from shop.shared.contracts.payments import StripeIntent


def intent(order_id: str | None, status: str = "succeeded", **money: int) -> StripeIntent:
    amount = money.get("amount", 1200)
    captured = money.get("captured", amount if status == "succeeded" else 0)
    return StripeIntent(
        payment_intent_id=f"pi_{order_id}_{status}",
        order_id=order_id,
        status=status,
        amount_cents=amount,
        captured_cents=captured,
        refunded_cents=money.get("refunded", 0),
    )


def order(
    order_id: str, status: str = "completed", total: int = 1200, refunded: int = 0
) -> BookMoney:
    return BookMoney(
        order_id=order_id,
        status=status,
        total_cents=total,
        refunded_cents=refunded,
        payment_intent_id=f"pi_{order_id}_succeeded" if status != "failed" else None,
    )


def kinds(intents: list[StripeIntent], orders: list[BookMoney]) -> list[tuple]:
    found = compare(intents, {o.order_id: o for o in orders})
    return [(d.kind, d.order_id, d.expected_cents, d.actual_cents) for d in found]


def test_a_shop_that_agrees_with_stripe_has_nothing_to_report() -> None:
    intents = [
        intent("a"),  # completed
        intent("b", refunded=500),  # partially refunded
        intent("c", refunded=1200),  # refunded in full
        intent("d", "requires_payment_method"),  # declined
        intent("e", "canceled"),  # cancelled: the hold voided
    ]
    orders = [
        order("a"),
        order("b", "partially_refunded", refunded=500),
        order("c", "refunded", refunded=1200),
        order("d", "failed"),
        order("e", "cancelled"),
        order("f", "running"),  # its payment not yet made
    ]
    assert kinds([*intents, intent("f", "requires_capture")], orders) == []


def test_money_kept_for_an_order_the_book_lacks_or_did_not_complete() -> None:
    assert kinds([intent("ghost")], []) == [("charge_without_order", "ghost", 0, 1200)]
    assert kinds([intent("x")], [order("x", "failed")]) == [("charge_without_order", "x", 0, 1200)]
    assert kinds([intent(None, amount=700)], []) == [("charge_without_order", None, 0, 700)]
    # Captured and refunded in full: nothing kept, nothing to say.
    assert kinds([intent("y", refunded=1200)], [order("y", "cancelled")]) == []


def test_a_completed_order_with_no_captured_payment() -> None:
    assert kinds([], [order("a")]) == [("order_without_charge", "a", 1200, 0)]
    assert kinds([intent("b", "canceled")], [order("b")]) == [
        ("order_without_charge", "b", 1200, 0)
    ]


def test_captured_less_refunded_differs_from_the_books_total_less_refunds() -> None:
    # A refund made at Stripe that the book does not know of.
    assert kinds([intent("a", refunded=300)], [order("a")]) == [("amount_mismatch", "a", 1200, 900)]
    # A refund the book has that Stripe does not.
    assert kinds([intent("b")], [order("b", "partially_refunded", refunded=200)]) == [
        ("amount_mismatch", "b", 1000, 1200)
    ]
    # Charged twice.
    twice = [intent("c"), intent("c").model_copy(update={"payment_intent_id": "pi_c2"})]
    assert kinds(twice, [order("c")]) == [("amount_mismatch", "c", 1200, 2400)]


def test_a_hold_left_open_on_an_order_that_ended() -> None:
    assert kinds([intent("a", "requires_capture")], [order("a", "failed")]) == [
        ("open_hold", "a", 0, 1200)
    ]
    # A completed order whose hold was never captured: both said.
    assert kinds([intent("b", "requires_capture")], [order("b")]) == [
        ("order_without_charge", "b", 1200, 0),
        ("open_hold", "b", 0, 1200),
    ]


def test_the_daily_run_covers_the_whole_day_before_in_utc() -> None:
    window = daily_window(date(2026, 12, 6))
    assert window.reconciliation_id == "rec_daily_20261205"
    assert window.since == datetime(2026, 12, 5, tzinfo=UTC)
    assert window.until == datetime(2026, 12, 6, tzinfo=UTC)
