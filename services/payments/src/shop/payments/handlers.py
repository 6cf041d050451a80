"""Payments: Stripe PaymentIntents with manual capture, each call idempotent at Stripe.

Every Stripe call is one journaled step with an idempotency key derived from the order and
the step, so a retry after a timeout, a dropped connection or a crash between Stripe's answer
and the journal write replays Stripe's first answer instead of charging again.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import restate
import stripe
from restate import Context, RunOptions, TerminalError
from stripe.params import PaymentIntentCreateParams, PaymentIntentListParams

from shop.payments.settings import settings
from shop.payments.stripe_client import stripe_client
from shop.shared import names
from shop.shared.contracts.payments import (
    Charge,
    ChargeRequest,
    IntentPage,
    IntentQuery,
    IntentRef,
    Refund,
    RefundAction,
    RefundCharge,
    StripeIntent,
    StripeRefund,
)
from shop.shared.crash import crash_point
from shop.shared.stripe_keys import idempotency_key
from shop.shared.telemetry import counted_from_zero, step, stripe_calls

# Only the workflows move money. A Stripe that keeps failing pauses the call for an operator.
payments = restate.Service(
    names.PAYMENTS, ingress_private=True, invocation_retry_policy=settings.pause_when_stuck
)
counted_from_zero(stripe_calls, "result", ["ok", "declined", "refused", "error"])


VOIDABLE = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)


def action_url(intent: stripe.PaymentIntent) -> str | None:
    """Where the customer confirms the payment with their bank (3-D Secure), when Stripe asks
    for that by redirect (it does when the intent was confirmed with a return_url)."""
    action = intent.to_dict().get("next_action") or {}
    if action.get("type") != "redirect_to_url":
        return None
    return (action.get("redirect_to_url") or {}).get("url")


def as_charge(order_id: str, intent: stripe.PaymentIntent) -> Charge:
    return Charge(
        order_id=order_id,
        payment_intent_id=intent.id,
        amount_cents=intent.amount,
        status=intent.status,
        action_url=action_url(intent) if intent.status == "requires_action" else None,
    )


def result_of(e: BaseException | None) -> str:
    """How a Stripe call went, for the metrics: a decline is the card's answer (normal), a
    refused request the code's or the data's (look), anything else Stripe not answering."""
    if e is None:
        return "ok"
    if isinstance(e, stripe.CardError):
        return "declined"
    if isinstance(e, stripe.InvalidRequestError):
        return "refused"
    return "error"


@contextmanager
def stripe_call(operation: str, order_id: str | None, **attributes: str) -> Iterator[None]:
    """One call to Stripe: its span (`stripe <operation>`), and its count by result."""
    failure: BaseException | None = None
    try:
        with step(f"stripe {operation}", order_id, **attributes):
            yield
    except BaseException as e:
        failure = e
        raise
    finally:
        stripe_calls.add(1, {"operation": operation, "result": result_of(failure)})


def terminal(e: stripe.StripeError, what: str) -> TerminalError:
    """Declines and invalid requests are answers, not outages: they are never retried."""
    status = 402 if isinstance(e, stripe.CardError) else 400
    return TerminalError(f"{what}: {e.user_message or e.code or e}", status_code=status)


async def stripe_authorize(request: ChargeRequest) -> Charge:
    """A hold on the card (`requires_capture`), or, for a card whose bank wants the customer to
    confirm (3-D Secure), an intent in `requires_action` with the URL to send them to."""
    params: PaymentIntentCreateParams = {
        "amount": request.amount_cents,
        "currency": request.currency,
        "payment_method": request.payment_method,
        # Cards only. (`payment_method_types`, its older name, is refused with a 400 since
        # Stripe's API version 2026-09-30, and the SDK asks for a later one.)
        "allowed_payment_method_types": ["card"],
        "capture_method": "manual",
        "confirm": True,
        "metadata": {"order_id": request.order_id},
        "description": f"shop order {request.order_id}",
    }
    if request.return_url:  # asks Stripe for a redirect (not its JS SDK) when the bank checks
        params["return_url"] = request.return_url
    try:
        with stripe_call("authorize", request.order_id):
            intent = await stripe_client().v1.payment_intents.create_async(
                params=params,
                options={"idempotency_key": idempotency_key(request.order_id, "authorize")},
            )
    except (stripe.CardError, stripe.InvalidRequestError) as e:
        raise terminal(e, "payment declined") from e
    crash_point("payments-after-authorize")
    return as_charge(request.order_id, intent)


async def stripe_capture(charge: Charge) -> Charge:
    try:
        with stripe_call("capture", charge.order_id):
            intent = await stripe_client().v1.payment_intents.capture_async(
                charge.payment_intent_id,
                options={"idempotency_key": idempotency_key(charge.order_id, "capture")},
            )
    except stripe.InvalidRequestError as e:
        raise terminal(e, "capture refused") from e
    crash_point("payments-after-capture")
    return as_charge(charge.order_id, intent)


async def stripe_check(charge: Charge) -> Charge:
    with stripe_call("retrieve", charge.order_id):
        intent = await stripe_client().v1.payment_intents.retrieve_async(charge.payment_intent_id)
    return as_charge(charge.order_id, intent)


async def stripe_refund(charge: Charge) -> Refund:
    """Give the money back whatever state the intent is in: void a hold, refund a capture."""
    client, order_id = stripe_client(), charge.order_id
    with stripe_call("refund", order_id):
        return await _give_back(client, charge)


async def _give_back(client: stripe.StripeClient, charge: Charge) -> Refund:
    order_id = charge.order_id
    intent = await client.v1.payment_intents.retrieve_async(charge.payment_intent_id)
    action: RefundAction
    # Anything not yet paid is voided, including an intent whose 3-D Secure check failed
    # (requires_payment_method): left open, it could still be confirmed with another card.
    if intent.status in VOIDABLE:
        await client.v1.payment_intents.cancel_async(
            intent.id, options={"idempotency_key": idempotency_key(order_id, "void")}
        )
        action = "voided"
    elif intent.status == "succeeded":
        await client.v1.refunds.create_async(
            params={"payment_intent": intent.id, "metadata": {"order_id": order_id}},
            options={"idempotency_key": idempotency_key(order_id, "refund")},
        )
        action = "refunded"
    else:  # canceled already, or never authorized (declined): nothing is held
        action = "nothing"
    return Refund(order_id=order_id, payment_intent_id=intent.id, action=action)


async def stripe_refund_part(charge: RefundCharge) -> StripeRefund:
    """One Stripe refund per refund id (its idempotency key), of part or all of a capture.
    Stripe refusing it (more than is left, say, after a refund made at Stripe directly) is
    an answer no retry changes: a terminal error, so the refund ends failed with the reason."""
    key = idempotency_key(charge.order_id, f"refund-{charge.refund_id}")
    try:
        with stripe_call("refund", charge.order_id, **{"shop.refund_id": charge.refund_id}):
            refund = await stripe_client().v1.refunds.create_async(
                params={
                    "payment_intent": charge.payment_intent_id,
                    "amount": charge.amount_cents,
                    "metadata": {"order_id": charge.order_id, "refund_id": charge.refund_id},
                },
                options={"idempotency_key": key},
            )
    except (stripe.CardError, stripe.InvalidRequestError) as e:
        raise terminal(e, "refund refused") from e
    crash_point("payments-after-refund")
    return StripeRefund(
        refund_id=charge.refund_id,
        stripe_refund_id=refund.id,
        amount_cents=refund.amount,
        status=refund.status or "pending",
    )


async def intent_money(client: stripe.StripeClient, intent: stripe.PaymentIntent) -> StripeIntent:
    """What an intent holds: captured, and refunded (asked of Stripe only for a captured one:
    nothing else can have refunds)."""
    refunded = 0
    if intent.amount_received:
        refunds = await client.v1.refunds.list_async(
            params={"payment_intent": intent.id, "limit": 100}
        )
        async for r in refunds.auto_paging_iter():
            if r.status in ("succeeded", "pending"):
                refunded += r.amount
    return StripeIntent(
        payment_intent_id=intent.id,
        order_id=(intent.to_dict().get("metadata") or {}).get("order_id"),
        status=intent.status,
        amount_cents=intent.amount,
        captured_cents=intent.amount_received or 0,
        refunded_cents=refunded,
    )


async def stripe_list_intents(query: IntentQuery) -> IntentPage:
    client = stripe_client()
    params: PaymentIntentListParams = {
        "created": {"gte": query.created_gte, "lt": query.created_lt},
        "limit": query.limit,
    }
    if query.starting_after:
        params["starting_after"] = query.starting_after
    with stripe_call("list", None):
        page = await client.v1.payment_intents.list_async(params=params)
        intents = [await intent_money(client, intent) for intent in page.data]
    return IntentPage(intents=intents, has_more=page.has_more)


async def stripe_intent(ref: IntentRef) -> StripeIntent:
    client = stripe_client()
    with stripe_call("retrieve", None):
        intent = await client.v1.payment_intents.retrieve_async(ref.payment_intent_id)
        return await intent_money(client, intent)


@payments.handler()
async def authorize(ctx: Context, request: ChargeRequest) -> Charge:
    """Hold the order's total on the card (no money moves until capture)."""
    return await ctx.run_typed("stripe-authorize", stripe_authorize, RunOptions(), request=request)


@payments.handler()
async def capture(ctx: Context, charge: Charge) -> Charge:
    return await ctx.run_typed("stripe-capture", stripe_capture, RunOptions(), charge=charge)


@payments.handler()
async def check(ctx: Context, charge: Charge) -> Charge:
    """How the intent stands now at Stripe (after a 3-D Secure check, say): Stripe is the
    source of truth, a webhook only says when to look."""
    return await ctx.run_typed("stripe-retrieve", stripe_check, RunOptions(), charge=charge)


@payments.handler()
async def refund(ctx: Context, charge: Charge) -> Refund:
    return await ctx.run_typed("stripe-refund", stripe_refund, RunOptions(), charge=charge)


@payments.handler()
async def refund_part(ctx: Context, charge: RefundCharge) -> StripeRefund:
    """Part or all of a completed order's payment back to the card (an operator's refund)."""
    return await ctx.run_typed("stripe-refund", stripe_refund_part, RunOptions(), charge=charge)


@payments.handler()
async def list_intents(ctx: Context, query: IntentQuery) -> IntentPage:
    """A page of the PaymentIntents created in a window, with what each holds (reconciliation)."""
    return await ctx.run_typed(
        "stripe-list-intents", stripe_list_intents, RunOptions(), query=query
    )


@payments.handler()
async def intent(ctx: Context, ref: IntentRef) -> StripeIntent:
    """One PaymentIntent's money (reconciliation: one the window's list did not have)."""
    return await ctx.run_typed("stripe-intent", stripe_intent, RunOptions(), ref=ref)
