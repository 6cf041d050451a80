"""PaymentIntents in the Stripe emulator: created, confirmed with a test card (declined, or sent
to the bank's 3-D Secure page), captured, cancelled; and the events each change makes."""

import secrets
import time
from typing import Any, Literal, NoReturn
from urllib.parse import urlencode

from shop.dev.stripe_ledger import Ledger, new_id
from shop.dev.stripe_params import StripeError, as_int, flag, missing

GOOD_CARDS = {"pm_card_visa", "pm_card_mastercard", "pm_card_amex"}
# Declined when charged (chargeCustomerFail: Stripe lets it be saved to a customer first).
DECLINED_CARDS = {
    "pm_card_chargeDeclined": "generic_decline",
    "pm_card_chargeCustomerFail": "generic_decline",
}
# Cards whose bank asks the customer to confirm (3-D Secure) on every payment.
AUTHENTICATION_CARDS = {"pm_card_threeDSecure2Required", "pm_card_authenticationRequired"}
# What Stripe says in last_payment_error when the customer fails the bank's check.
AUTHENTICATION_FAILURE = (
    "The provided PaymentMethod has failed authentication. You can provide "
    "payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again."
)
# The event Stripe sends when an intent enters each status.
STATUS_EVENTS = {
    "requires_action": "payment_intent.requires_action",
    "requires_capture": "payment_intent.amount_capturable_updated",
    "succeeded": "payment_intent.succeeded",
    "canceled": "payment_intent.canceled",
    "requires_payment_method": "payment_intent.payment_failed",
}


def create_intent(ledger: Ledger, params: dict[str, Any]) -> dict[str, Any]:
    """A new intent, recorded (the caller confirms it when asked and saves it)."""
    if "payment_method_types" in params:  # read-only since 2026-09-30, the SDK's API version
        raise StripeError(
            400,
            "invalid_request_error",
            "payment_method_types can no longer be set: use allowed_payment_method_types.",
            code="payment_method_types_no_longer_supported",
            param="payment_method_types",
        )
    intent_id = new_id("pi")
    intent = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": as_int(params, "amount"),
        "amount_capturable": 0,
        "amount_received": 0,
        "canceled_at": None,
        "cancellation_reason": None,
        "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
        "currency": str(params.get("currency", "")).lower() or missing("currency"),
        "capture_method": params.get("capture_method", "automatic"),
        "created": int(time.time()),
        "description": params.get("description"),
        "metadata": params.get("metadata") or {},
        "payment_method": params.get("payment_method"),
        "payment_method_types": params.get("allowed_payment_method_types") or ["card"],
        "last_payment_error": None,
        "livemode": False,
        "next_action": None,
        "status": "requires_payment_method",
    }
    if intent["payment_method"]:
        intent["status"] = "requires_confirmation"
    ledger.intents[intent["id"]] = intent
    return intent


def decline(intent: dict[str, Any], code: str, decline_code: str, message: str) -> NoReturn:
    """The card is declined: the intent wants another payment method; Stripe answers 402."""
    intent["status"] = "requires_payment_method"
    error = {"code": code, "decline_code": decline_code, "message": message, "type": "card_error"}
    intent["last_payment_error"] = error
    raise StripeError(
        402,
        "card_error",
        message,
        code=code,
        decline_code=decline_code,
        payment_intent=dict(intent),
    )


def confirm(intent: dict[str, Any], params: dict[str, Any], public_url: str) -> None:
    method = params.get("payment_method") or intent["payment_method"]
    if intent["status"] not in {"requires_payment_method", "requires_confirmation"}:
        raise StripeError(
            400,
            "invalid_request_error",
            f"This PaymentIntent's status is {intent['status']} and cannot be confirmed.",
            code="payment_intent_unexpected_state",
        )
    if not method:
        raise StripeError(
            400,
            "invalid_request_error",
            "You must provide a payment_method.",
            param="payment_method",
        )
    intent["payment_method"] = method
    if method in DECLINED_CARDS:
        decline(intent, "card_declined", DECLINED_CARDS[method], "Your card was declined.")
    if method in AUTHENTICATION_CARDS and flag(params, "off_session"):
        # Nobody is there to authenticate: Stripe declines instead of asking.
        message = "Your card was declined. This transaction requires authentication."
        decline(intent, "authentication_required", "authentication_required", message)
    if method not in GOOD_CARDS | AUTHENTICATION_CARDS:
        raise StripeError(
            400,
            "invalid_request_error",
            f"No such PaymentMethod: '{method}'",
            code="resource_missing",
            param="payment_method",
        )
    intent["last_payment_error"] = None
    if method in AUTHENTICATION_CARDS:
        # Stripe's redirect flow: the customer goes to the bank's page (here, ours) and comes
        # back to return_url; what happened there arrives as a webhook.
        intent["status"] = "requires_action"
        intent["next_action"] = {
            "type": "redirect_to_url",
            "redirect_to_url": {
                "url": f"{public_url}/3ds/{intent['id']}",
                "return_url": params.get("return_url"),
            },
        }
        return
    authorized(intent)


def authorized(intent: dict[str, Any]) -> None:
    """The bank said yes: a hold to capture later, or the money at once."""
    intent["next_action"] = None
    if intent["capture_method"] == "manual":
        intent["status"], intent["amount_capturable"] = "requires_capture", intent["amount"]
    else:
        intent["status"], intent["amount_received"] = "succeeded", intent["amount"]


def authenticate(intent: dict[str, Any], outcome: Literal["complete", "fail"]) -> None:
    """The customer's answer on the bank's 3-D Secure page."""
    if intent["status"] != "requires_action":
        raise StripeError(
            400,
            "invalid_request_error",
            f"This PaymentIntent's status is {intent['status']}: it does not wait for "
            "authentication.",
            code="payment_intent_unexpected_state",
        )
    if outcome == "complete":
        authorized(intent)
        return
    # As Stripe: the method that failed moves into last_payment_error, the intent waits for
    # another one.
    intent["status"], intent["next_action"] = "requires_payment_method", None
    intent["last_payment_error"] = {
        "code": "payment_intent_authentication_failure",
        "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
        "message": AUTHENTICATION_FAILURE,
        "payment_method": {"id": intent["payment_method"], "object": "payment_method"},
        "type": "invalid_request_error",
    }
    intent["payment_method"] = None


def lifecycle_events(before: str | None, intent: dict[str, Any], failed: bool) -> list[str]:
    """The events Stripe sends for a change of an intent from status `before` (None: it was
    just made); `failed`: a payment attempt failed (even with no change of status)."""
    types = ["payment_intent.created"] if before is None else []
    status = intent["status"]
    if failed:
        types.append("payment_intent.payment_failed")
    elif status != before and status in STATUS_EVENTS:
        types.append(STATUS_EVENTS[status])
    return types


def return_to(intent: dict[str, Any], return_url: str, outcome: str) -> str:
    """Where the bank page sends the customer back: return_url with what Stripe adds to it."""
    query = urlencode(
        {
            "payment_intent": intent["id"],
            "payment_intent_client_secret": intent.get("client_secret") or "",
            "redirect_status": "succeeded" if outcome == "complete" else "failed",
        }
    )
    return f"{return_url}{'&' if '?' in return_url else '?'}{query}"


def get_intent(ledger: Ledger, intent_id: str) -> dict[str, Any]:
    if intent_id not in ledger.intents:
        raise StripeError(
            404,
            "invalid_request_error",
            f"No such payment_intent: '{intent_id}'",
            code="resource_missing",
            param="intent",
        )
    return ledger.intents[intent_id]


def capture(intent: dict[str, Any]) -> None:
    if intent["status"] != "requires_capture":
        raise StripeError(
            400,
            "invalid_request_error",
            "This PaymentIntent could not be captured because it has a status of "
            f"{intent['status']}.",
            code="payment_intent_unexpected_state",
        )
    intent["status"], intent["amount_received"] = "succeeded", intent["amount"]
    intent["amount_capturable"] = 0


def cancel(intent: dict[str, Any], params: dict[str, Any]) -> None:
    if intent["status"] in {"succeeded", "canceled"}:
        raise StripeError(
            400,
            "invalid_request_error",
            f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}.",
            code="payment_intent_unexpected_state",
        )
    intent["status"], intent["next_action"], intent["amount_capturable"] = "canceled", None, 0
    intent["canceled_at"] = int(time.time())
    intent["cancellation_reason"] = params.get("cancellation_reason")
