"""Stripe's webhook: a verified event about an order's payment wakes the order.

The event is only a signal. The order then asks Stripe itself how its payment stands, so the
endpoint answers at once (Stripe retries anything but a 2xx), and a duplicate, late or
out-of-order event changes nothing. The signature is checked by the stripe package over the
raw body, with the endpoint's signing secret, and an event older than five minutes (a replay)
is refused.
"""

import json
import logging
import re
import time
from typing import Annotated, Any

import stripe
from fastapi import APIRouter, Header, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from shop.gateway.deps import Ingress, Settings
from shop.gateway.orders import ORDER_ID_PATTERN
from shop.gateway.responses import BAD_WEBHOOK, STRIPE_EVENT, UNAVAILABLE, merge
from shop.shared.contracts.fulfilment import PaymentEvent
from shop.shared.stripe_keys import made_by_order
from shop.shared.stripe_webhook import WAKING_EVENTS

log = logging.getLogger(__name__)
router = APIRouter()


class WebhookReceipt(BaseModel):
    """Stripe needs only the 2xx; the body says what came of the event, for whoever looks."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)  # always sent

    received: bool = True
    delivered: bool
    note: str


def refused(why: str) -> HTTPException:
    return HTTPException(400, f"webhook refused: {why}")


def signed_in_the_future(header: str | None) -> bool:
    """Stripe's library refuses a signature older than its tolerance, not one dated ahead of
    it: such an event could be replayed for that long after it was captured."""
    for part in (header or "").split(","):
        name, _, value = part.partition("=")
        if name.strip() == "t" and value.strip().isdigit():
            return int(value) > time.time() + stripe.Webhook.DEFAULT_TOLERANCE
    return False


def order_of(event: dict[str, Any]) -> str | None:
    """The order a PaymentIntent event is about (the intent's metadata[order_id])."""
    intent = (event.get("data") or {}).get("object") or {}
    order_id = (intent.get("metadata") or {}).get("order_id")
    if isinstance(order_id, str) and re.fullmatch(ORDER_ID_PATTERN, order_id):
        return order_id
    return None


@router.post(
    "/webhooks/stripe",
    responses=merge(BAD_WEBHOOK, UNAVAILABLE),
    # The body is read raw (the signature covers its exact bytes), so it is documented here.
    openapi_extra={"requestBody": STRIPE_EVENT},
)
async def stripe_webhook(
    request: Request,
    ingress: Ingress,
    settings: Settings,
    stripe_signature: Annotated[str | None, Header()] = None,
) -> WebhookReceipt:
    """Stripe's events about payments (`payment_intent.amount_capturable_updated`,
    `payment_intent.payment_failed`) wake the order named by the intent's
    `metadata[order_id]`; other events, and events about no known order, are acknowledged and
    ignored. 400 when the `Stripe-Signature` does not verify."""
    secret = settings.stripe_webhook_secret.get_secret_value()
    if signed_in_the_future(stripe_signature):
        raise refused("the Stripe-Signature's timestamp is in the future")
    payload = await request.body()
    # Verified, then read as plain JSON: the SDK's construct_event also builds its Event
    # object from it (turned back into a dict here), 5% of the gateway's CPU per order.
    try:
        tolerance = stripe.Webhook.DEFAULT_TOLERANCE
        stripe.WebhookSignature.verify_header(payload, stripe_signature, secret, tolerance)
        body = json.loads(payload)
    except stripe.SignatureVerificationError as e:
        log.warning("Stripe webhook refused: %s", e.user_message)
        raise refused(f"the Stripe-Signature does not verify ({e.user_message})") from e
    except ValueError as e:  # signed, yet not UTF-8 JSON
        raise refused("the body is not a Stripe event") from e
    if not isinstance(body, dict) or body.get("object") != "event":
        raise refused("the body is not a Stripe event")
    event_id, event_type = body.get("id"), body.get("type")
    if event_type not in WAKING_EVENTS or not isinstance(event_id, str):
        return WebhookReceipt(delivered=False, note=f"ignored: {event_type} is not awaited")
    order_id = order_of(body)
    if order_id is None:
        return WebhookReceipt(delivered=False, note="ignored: the payment is not an order's")
    # Caused by the order's own request (a card confirmed without a bank check, or declined at
    # once): the order had this answer in the response already. Waking it would cost two
    # Restate requests and an invocation per order for nothing. A 3-D Secure check ends on the
    # bank's page, never with one of the order's keys.
    if made_by_order((body.get("request") or {}).get("idempotency_key"), order_id):
        return WebhookReceipt(delivered=False, note="ignored: the order's own request caused it")
    if not await ingress.payment_event(order_id, PaymentEvent(event_id=event_id, type=event_type)):
        return WebhookReceipt(delivered=False, note=f"ignored: no order {order_id}")
    log.info("Stripe event %s (%s) handed to order %s", event_id, event_type, order_id)
    return WebhookReceipt(delivered=True, note=f"handed to order {order_id}")
