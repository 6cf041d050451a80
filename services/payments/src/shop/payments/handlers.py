"""Payments: charges through Stripe PaymentIntents, each idempotent at Stripe per order."""

import restate
import stripe
from restate import Context, RunOptions, TerminalError

from shop.payments.stripe_client import stripe_client
from shop.shared import names
from shop.shared.models import Charge, ChargeRequest

payments = restate.Service(names.PAYMENTS)


def idempotency_key(order_id: str, step: str) -> str:
    """Stripe idempotency key for one step of one order: a replayed or retried step reuses it."""
    return f"shop-{order_id}-{step}"


async def create_charge(request: ChargeRequest) -> Charge:
    try:
        intent = await stripe_client().v1.payment_intents.create_async(
            params={
                "amount": request.amount_cents,
                "currency": request.currency,
                "payment_method": request.payment_method,
                "payment_method_types": ["card"],
                "confirm": True,
                "metadata": {"order_id": request.order_id},
                "description": f"shop order {request.order_id}",
            },
            options={"idempotency_key": idempotency_key(request.order_id, "charge")},
        )
    except stripe.CardError as e:
        # A decline is an answer, not an outage: never retried.
        raise TerminalError(f"payment declined: {e.user_message or e.code}", status_code=402) from e
    except stripe.InvalidRequestError as e:
        raise TerminalError(f"payment rejected: {e.user_message or e}", status_code=400) from e
    return Charge(payment_intent_id=intent.id, amount_cents=intent.amount, status=intent.status)


@payments.handler()
async def charge(ctx: Context, request: ChargeRequest) -> Charge:
    return await ctx.run_typed("stripe-charge", create_charge, RunOptions(), request=request)
