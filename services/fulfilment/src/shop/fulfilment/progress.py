"""Progress reporting: durable workflow state first (authoritative), then a one-way send to
the order book (the system of record, which outlives the workflow), then a best-effort push to
Valkey for live updates, which can never fail or stall the workflow."""

import asyncio
import logging
import time
from datetime import UTC, datetime
from functools import cache

import redis.asyncio as redis
import restate
from restate import WorkflowContext
from restate.server_context import restate_context_is_replaying

from shop.fulfilment.settings import settings
from shop.shared import calls
from shop.shared import progress_feed as feed
from shop.shared.contracts.fulfilment import (
    FulfilmentResult,
    Order,
    OrderState,
    OrderStatus,
    Step,
)
from shop.shared.contracts.orders import BookEntry, BookOrder
from shop.shared.telemetry import (
    counted_from_zero,
    order_duration,
    orders_finished,
    progress_pushes,
    step,
)

log = restate.getLogger(__name__)  # silent while the workflow replays
Booked = tuple[OrderState, bool]  # an order's status, and whether it waits for the bank
STATUS_KEY = "status"
counted_from_zero(progress_pushes, "result", ["ok", "failed"])


@cache
def valkey() -> redis.Redis:
    timeout = settings.progress_push_timeout_seconds
    return feed.valkey(settings, socket_timeout=timeout, socket_connect_timeout=timeout)


# What a failed order's reason starts with (the steps' terminal errors), as a metric's label:
# a bounded set, and declines and stock apart from what an operator must look at.
REASONS = {
    "payment declined": "payment_declined",
    "out of stock": "out_of_stock",
    "capture refused": "capture_refused",
    "payment authentication": "payment_authentication",
    "payment not confirmed": "payment_authentication",
    "cancelled": "cancelled",
}


def reason_of(status: OrderStatus) -> str:
    reason = (status.result.reason if status.result else None) or ""
    if not reason:
        return "none"
    return next((label for start, label in REASONS.items() if reason.startswith(start)), "other")


def count_finished(status: OrderStatus, placed_at: datetime | None) -> None:
    orders_finished.add(1, {"status": status.status, "reason": reason_of(status)})
    if placed_at is not None:
        took = (datetime.now(UTC) - placed_at).total_seconds()
        order_duration.record(max(took, 0.0), {"status": status.status})


async def push(status: OrderStatus, placed_at: datetime | None, at: float) -> bool:
    """Append to the order's short history, then publish to live subscribers. Runs once per
    step (not again on replay), so it is also where finished orders are counted. `at` is when
    the workflow reached the step (Unix time): the gateway measures the push lag from it."""
    if status.is_final:
        count_finished(status, placed_at)
    with step("progress push", status.order_id, **{"shop.order.step": status.step}):
        pushed = await publish(status, at)
    progress_pushes.add(1, {"result": "ok" if pushed else "failed"})
    return pushed


async def publish(status: OrderStatus, at: float) -> bool:
    data, key = feed.pushed(status, at), feed.history_key(status.order_id)
    try:
        async with asyncio.timeout(settings.progress_push_timeout_seconds):
            # One round trip, not a transaction: nothing needs the three at once (readers
            # keep the highest seq, whichever way they learn it), and MULTI/EXEC were two
            # more commands to send and parse per step.
            async with valkey().pipeline(transaction=False) as pipe:
                pipe.xadd(
                    key, {"status": data}, id=feed.entry_id(status), maxlen=feed.HISTORY_MAXLEN
                )
                pipe.expire(key, feed.HISTORY_TTL_SECONDS)
                pipe.publish(feed.CHANNEL, data)
                await pipe.execute(raise_on_error=False)  # an id added before is fine
        return True
    except Exception as e:  # best effort by design: the durable state already holds it
        log.warning("progress push for %s failed: %s", status.order_id, e)
        return False


class Progress:
    """Reports the order's steps, numbered: the number is the event id the browser sees, the
    same on every replay because the workflow's code path is."""

    def __init__(self, ctx: WorkflowContext, order: Order, book: BookOrder) -> None:
        self.ctx, self.order_id, self.trace_id = ctx, order.order_id, order.trace_id
        self.book: BookOrder | None = book  # goes with the first entry only
        self.placed_at = book.placed_at  # an order's duration ends at its final push
        self.booked: Booked = ("pending", False)  # what the book was last sent
        self.seq = 0
        self.step: Step = "pending"
        self.pushed: asyncio.Task[bool] | None = None  # the latest push; the next one follows it

    async def __call__(
        self,
        step: Step,
        percent: int,
        message: str,
        status: OrderState = "running",
        result: FulfilmentResult | None = None,
        cancellable: bool = False,
        action_url: str | None = None,
    ) -> None:
        self.seq, self.step = self.seq + 1, step
        update = OrderStatus(
            order_id=self.order_id,
            status=status,
            step=step,
            percent=percent,
            message=message,
            seq=self.seq,
            cancellable=cancellable,
            result=result,
            trace_id=self.trace_id,
            action_url=action_url,
        )
        # Every step is in the order's state and its live feed; the log keeps the outcome
        # (steps at DEBUG: formatting a line per step was ~9% of this service's CPU).
        level = logging.INFO if update.is_final else logging.DEBUG
        log.log(level, "order %s: %s (%d%%) %s", self.order_id, step, percent, message)
        self.ctx.set(STATUS_KEY, update)
        # Into the order book when the order's status changes (it starts running, it ends) or
        # it starts or stops waiting for the customer's bank (which the alert on orders running
        # too long leaves out), not at every step: each entry is an invocation for Restate and
        # a write for PostgreSQL (at every step the book cost a third of the shop's
        # throughput, bench/orders.py).
        # One-way: journaled (so sent exactly once), never waited for, so the book costs the
        # order no round trip, and a book that cannot write (PostgreSQL down) delays nothing.
        booked = (status, step == "authenticating")
        if booked != self.booked:
            calls.record(self.ctx, book_entry(update, self.book))
            self.book, self.booked = None, booked
        # The push is not a journaled step, which would cost a round trip to Restate per step:
        # it runs when the workflow first reaches this line and is skipped while it replays
        # (the flag the SDK's own logger uses). The state above is what counts; a push made
        # twice (a crash before the next step was journaled) changes nothing, since the
        # history refuses a seq it holds and subscribers keep the highest seq.
        # Nor does the workflow wait for it (a Valkey round trip per step was ~15% of an
        # order's latency): each push runs in the background after the one before, so the
        # history gets its seqs in order, and the run ends only once its last push is out.
        if not restate_context_is_replaying.get():
            pushing = push_after(self.pushed, update, self.placed_at, time.time())
            self.pushed = asyncio.create_task(pushing)
            if update.is_final:
                await self.pushed


def book_entry(status: OrderStatus, order: BookOrder | None) -> BookEntry:
    result = status.result
    return BookEntry(
        order_id=status.order_id,
        seq=status.seq,
        status=status.status,
        step=status.step,
        percent=status.percent,
        message=status.message,
        reason=result.reason if result else None,
        payment_intent_id=result.payment_intent_id if result else None,
        order=order,
    )


async def push_after(
    before: "asyncio.Task[bool] | None", status: OrderStatus, placed_at: datetime, at: float
) -> bool:
    if before is not None:
        await before  # never raises: a push only reports whether it got through
    return await push(status, placed_at, at)
