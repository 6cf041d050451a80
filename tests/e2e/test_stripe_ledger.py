"""The Stripe emulator's charges outlive a restart of its process, like the rest of the
stack's state (its ledger is a file in the state folder)."""

import uuid

import httpx
import stripe
from stripe.params import PaymentIntentCreateParams

from shop.dev.stack import Stack

from ..invariants import IntentListParams
from .helpers import eventually


def test_a_charge_is_still_there_after_the_emulator_restarts(
    stack: Stack, stripe_api: stripe.StripeClient
) -> None:
    key = f"ledger-{uuid.uuid4().hex}"
    params: PaymentIntentCreateParams = {
        "amount": 700,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "confirm": True,
        "metadata": {"kept": key},
    }
    intent = stripe_api.v1.payment_intents.create(params=params, options={"idempotency_key": key})

    assert "stripe: started" in stack.ctl("restart", "stripe")
    eventually(lambda: _answers(stack.stripe_url), timeout=30)

    kept = stripe_api.v1.payment_intents.list(params=IntentListParams(metadata={"kept": key})).data
    assert [(i.id, i.status, i.amount_received) for i in kept] == [(intent.id, "succeeded", 700)]
    replayed = stripe_api.v1.payment_intents.create(params=params, options={"idempotency_key": key})
    assert replayed.id == intent.id


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
