"""Refunds in the Stripe emulator: whole or partial, with a reason, never more than was captured."""

import time
from typing import Any

from shop.dev.stripe_intents import get_intent
from shop.dev.stripe_ledger import Ledger, new_id
from shop.dev.stripe_params import StripeError, as_int, missing

# The reasons Stripe takes from a caller for a refund.
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def refund_reason(params: dict[str, Any]) -> str | None:
    reason = params.get("reason") or None
    if reason is not None and reason not in REFUND_REASONS:
        raise StripeError(
            400,
            "invalid_request_error",
            "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
            param="reason",
        )
    return reason


def refund(ledger: Ledger, params: dict[str, Any]) -> dict[str, Any]:
    intent = get_intent(ledger, str(params.get("payment_intent") or missing("payment_intent")))
    reason = refund_reason(params)
    if intent["status"] != "succeeded":
        raise StripeError(
            400,
            "invalid_request_error",
            "This PaymentIntent has no successful charge to refund.",
            code="charge_not_refundable",
        )
    refunded = sum(
        r["amount"] for r in ledger.refunds.values() if r["payment_intent"] == intent["id"]
    )
    amount = as_int(params, "amount") if "amount" in params else intent["amount"] - refunded
    if amount < 1 or refunded + amount > intent["amount"]:
        raise StripeError(
            400,
            "invalid_request_error",
            "Refund amount is greater than unrefunded amount.",
            code="charge_already_refunded",
        )
    item = {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "currency": intent["currency"],
        "payment_intent": intent["id"],
        "reason": reason,
        "status": "succeeded",
        "created": int(time.time()),
        "metadata": params.get("metadata") or {},
    }
    ledger.refunds[item["id"]] = item
    return ledger.save(item)
