"""Refund: one workflow per refund of a completed order, keyed by the refund's id.

Opened by `Orders/<order id>/refund` (which checks, under a lock of the order's row in the
book, that the order completed and that the amount is at most what is left), it then runs:
Stripe refund (an idempotency key per refund) -> the items back on the shelf when asked ->
one mail to the customer (a Message-ID per refund) -> the book. Each step is a journaled
call, so a crash anywhere resumes at that step: one Stripe refund and one mail, whatever dies.
Stripe refusing the refund for good ends it `failed`, with Stripe's reason, and nothing else
is done: the book keeps what the money truly is.
"""

from datetime import timedelta

import restate
from restate import TerminalError, WorkflowContext

from shop.orders import book
from shop.orders.db import connection
from shop.shared import calls, names
from shop.shared.contracts.email import EmailRequest
from shop.shared.contracts.inventory import ItemsBack
from shop.shared.contracts.orders import RefundOrder, RefundOutcome
from shop.shared.contracts.payments import RefundCharge
from shop.shared.crash import crash_point

refund = restate.Workflow(names.REFUND)
log = restate.getLogger(__name__)
# Its outcome is in the book for good; Restate keeps the run's journal a week, for operators.
REFUND_RETENTION = timedelta(days=7)
# What Stripe calls a refund that gave nothing back (one it failed or cancelled later).
NOT_REFUNDED = frozenset({"failed", "canceled"})


async def booked(outcome: RefundOutcome) -> None:
    async with connection() as conn:
        await book.settle_refund(conn, outcome)
    crash_point("orders-after-refund-booked")


@refund.main(workflow_retention=REFUND_RETENTION, ingress_private=True)
async def run(ctx: WorkflowContext, order: RefundOrder) -> RefundOutcome:
    """Only `Orders/refund` starts one, once it has checked the refund against the book."""
    if ctx.key() != order.refund_id:
        raise TerminalError("refund_id does not match the workflow key", status_code=400)
    charge = RefundCharge(
        order_id=order.order_id,
        refund_id=order.refund_id,
        payment_intent_id=order.payment_intent_id,
        amount_cents=order.amount_cents,
    )
    try:
        paid = await calls.refund_part(ctx, charge)
    except TerminalError as e:
        return await settle(ctx, order, failure=e.message)
    if paid.status in NOT_REFUNDED:
        return await settle(ctx, order, failure=f"Stripe: refund {paid.status}")
    if order.restock:  # every line at once, one SKU object each
        back = [
            (line.product_id, ItemsBack(order_id=order.order_id, quantity=line.quantity))
            for line in order.lines
        ]
        moves = [calls.put_back(ctx, sku, items) for sku, items in back]
        for moved in moves:
            await moved
    await tell_customer(ctx, order)
    return await settle(ctx, order, stripe_refund_id=paid.stripe_refund_id)


async def tell_customer(ctx: WorkflowContext, order: RefundOrder) -> None:
    """A mail that cannot be sent never undoes the refund (the money is back either way)."""
    mail = EmailRequest(
        order_id=order.order_id,
        to=order.customer_email,
        kind="refunded",
        lines=[],
        total_cents=order.amount_cents,
        currency=order.currency,
        reason=order.reason,
        refund_id=order.refund_id,
    )
    try:
        await calls.send_email(ctx, mail)
    except TerminalError as e:
        log.warning("refund mail for %s not delivered: %s", order.order_id, e.message)


async def settle(
    ctx: WorkflowContext,
    order: RefundOrder,
    stripe_refund_id: str | None = None,
    failure: str | None = None,
) -> RefundOutcome:
    outcome = RefundOutcome(
        refund_id=order.refund_id,
        order_id=order.order_id,
        status="failed" if failure else "succeeded",
        stripe_refund_id=stripe_refund_id,
        failure_reason=failure,
    )
    if failure:
        log.warning("refund %s of %s failed: %s", order.refund_id, order.order_id, failure)
    await ctx.run_typed("book-refund", booked, outcome=outcome)
    return outcome
