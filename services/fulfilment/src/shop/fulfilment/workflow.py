"""OrderFulfilment: charge, reserve, email, reporting progress after each step."""

import restate
from restate import TerminalError, WorkflowContext, WorkflowSharedContext

from shop.fulfilment.progress import STATUS_KEY, report
from shop.shared import calls, names
from shop.shared.models import (
    ChargeRequest,
    EmailRequest,
    FulfilmentResult,
    Order,
    OrderState,
    OrderStatus,
    Reservation,
)

fulfilment = restate.Workflow(names.FULFILMENT)


class Progress:
    """Numbers the order's progress events; the number is the SSE event id."""

    def __init__(self, ctx: WorkflowContext, order_id: str) -> None:
        self.ctx, self.order_id, self.seq = ctx, order_id, 0

    async def __call__(
        self,
        step: str,
        percent: int,
        message: str,
        status: OrderState = "running",
        result: FulfilmentResult | None = None,
    ) -> None:
        self.seq += 1
        await report(
            self.ctx,
            OrderStatus(
                order_id=self.order_id,
                status=status,
                step=step,
                percent=percent,
                message=message,
                seq=self.seq,
                result=result,
            ),
        )


@fulfilment.main()
async def run(ctx: WorkflowContext, order: Order) -> FulfilmentResult:
    if ctx.key() != order.order_id:
        raise TerminalError("order_id does not match the workflow key", status_code=400)
    progress = Progress(ctx, order.order_id)
    await progress("received", 5, "Order received")
    try:
        charge = await calls.charge(
            ctx,
            ChargeRequest(
                order_id=order.order_id,
                amount_cents=order.total_cents,
                currency=order.currency,
                payment_method=order.payment_method,
            ),
        )
        await progress("charged", 35, f"Payment {charge.payment_intent_id} charged")
        # Sorted by SKU so concurrent multi-line orders take stock in one global order.
        for line in sorted(order.lines, key=lambda line: line.product_id):
            await calls.reserve(
                ctx, line.product_id, Reservation(order_id=order.order_id, quantity=line.quantity)
            )
        await progress("reserved", 70, "Stock reserved")
        await calls.send_email(
            ctx,
            EmailRequest(
                order_id=order.order_id,
                to=order.customer_email,
                lines=order.lines,
                total_cents=order.total_cents,
                currency=order.currency,
            ),
        )
    except TerminalError as e:
        result = FulfilmentResult(order_id=order.order_id, status="failed", reason=e.message)
        await progress("failed", 100, f"Order failed: {e.message}", "failed", result)
        return result
    result = FulfilmentResult(
        order_id=order.order_id, status="completed", payment_intent_id=charge.payment_intent_id
    )
    await progress("completed", 100, "Confirmation email sent", "completed", result)
    return result


@fulfilment.handler()
async def get_status(ctx: WorkflowSharedContext) -> OrderStatus:
    """The order's latest progress; status `pending` with seq 0 before the run reports any."""
    status = await ctx.get(STATUS_KEY, type_hint=OrderStatus)
    return status or OrderStatus(
        order_id=ctx.key(), status="pending", step="pending", percent=0, message="Queued", seq=0
    )
