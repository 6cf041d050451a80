"""Stripe against the book: what each order's money should be, what Stripe holds, and the
differences, by kind. Pure functions over what both sides said, so every rule is tested
without either.

Matched by order (the intent's `order_id` metadata), never by time: an order placed a moment
before the window's end has its intent created a moment after, and each side's view of the
other is fetched by id, so no boundary makes a false alarm.
"""

from shop.shared.contracts.fulfilment import FINAL_STATES
from shop.shared.contracts.orders import REFUNDED_STATES, BookMoney, Discrepancy
from shop.shared.contracts.payments import StripeIntent

# The book's statuses of an order whose money the shop keeps (less its refunds).
PAID = frozenset({"completed"}) | REFUNDED_STATES
# An order that ended: nothing of it may still be held on a card.
ENDED = FINAL_STATES | REFUNDED_STATES


def expected_cents(order: BookMoney | None) -> int:
    """What the shop should keep of an order: its total less its refunds, if it was paid."""
    if order is None or order.status not in PAID:
        return 0
    return order.total_cents - order.refunded_cents


def compare(intents: list[StripeIntent], book: dict[str, BookMoney]) -> list[Discrepancy]:
    """Every difference between Stripe's intents and the book's orders (both sides of each
    order the book or Stripe names), in a stable order."""
    by_order: dict[str, list[StripeIntent]] = {}
    unexplained: list[StripeIntent] = []  # money at Stripe no order of the shop explains
    for intent in intents:
        if intent.order_id is None:
            unexplained.append(intent)
        else:
            by_order.setdefault(intent.order_id, []).append(intent)
    found: list[Discrepancy] = []
    for intent in unexplained:
        if intent.kept_cents:
            found.append(no_order(None, intent, intent.kept_cents))
    for order_id in sorted(set(by_order) | set(book)):
        found += differences(order_id, by_order.get(order_id, []), book.get(order_id))
    return found


def differences(
    order_id: str | None, intents: list[StripeIntent], order: BookMoney | None
) -> list[Discrepancy]:
    found = []
    kept = sum(i.kept_cents for i in intents)
    captured = [i for i in intents if i.captured_cents]
    expected = expected_cents(order)
    main = captured[0] if captured else (intents[0] if intents else None)
    if order is None or order.status not in PAID:
        if kept:
            found.append(no_order(order_id, main, kept))
    elif not captured:
        found.append(
            Discrepancy(
                kind="order_without_charge",
                order_id=order_id,
                payment_intent=order.payment_intent_id,
                expected_cents=expected,
                actual_cents=0,
            )
        )
    elif kept != expected:
        found.append(
            Discrepancy(
                kind="amount_mismatch",
                order_id=order_id,
                payment_intent=main.payment_intent_id if main else None,
                expected_cents=expected,
                actual_cents=kept,
            )
        )
    if order is not None and order.status in ENDED:
        for intent in intents:
            if intent.status == "requires_capture":
                found.append(
                    Discrepancy(
                        kind="open_hold",
                        order_id=order_id,
                        payment_intent=intent.payment_intent_id,
                        expected_cents=0,
                        actual_cents=intent.amount_cents,
                    )
                )
    return found


def no_order(order_id: str | None, intent: StripeIntent | None, kept: int) -> Discrepancy:
    return Discrepancy(
        kind="charge_without_order",
        order_id=order_id,
        payment_intent=intent.payment_intent_id if intent else None,
        expected_cents=0,
        actual_cents=kept,
    )
