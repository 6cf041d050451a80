"""Reconciliation: Stripe's money against the order book's over a window, reported, never
fixed (it moves no money). Once a day by itself for the day before, on a durable timer in
Restate (no cron daemon), and whenever an operator asks.

Each page of Stripe's list is a journaled call, so a crash resumes at the page it was on;
the comparison and its report are one journaled step, so a run reports once.
"""

import math
from datetime import UTC, date, datetime, time, timedelta
from typing import get_args

import restate
from restate import Context, ObjectContext, TerminalError, WorkflowContext

from shop.orders import book
from shop.orders.db import connection
from shop.orders.handlers import operator_once
from shop.orders.reconcile import compare
from shop.shared import calls, names
from shop.shared.contracts.orders import (
    BookReconciliation,
    DiscrepancyKind,
    RecentReconciliations,
    ReconciliationAsk,
    ReconciliationList,
    ReconciliationLookup,
    ReconciliationReport,
    ReconciliationWindow,
)
from shop.shared.contracts.payments import IntentQuery, IntentRef, StripeIntent
from shop.shared.telemetry import counted_from_zero, discrepancies_found

reconciliation = restate.Workflow(names.RECONCILIATION)
reconciliations = restate.Service(names.RECONCILIATIONS)
schedule = restate.VirtualObject(names.RECONCILIATION_SCHEDULE)
log = restate.getLogger(__name__)
RETENTION = timedelta(days=7)  # the report is in the book for good
counted_from_zero(discrepancies_found, "kind", list(get_args(DiscrepancyKind)))


async def started(window: ReconciliationWindow) -> None:
    async with connection() as conn:
        await book.start_reconciliation(conn, window)


async def unlisted(window: ReconciliationWindow, listed: set[str]) -> list[str]:
    """The payments of the window's orders that Stripe's list of the window did not have
    (created a moment after its end, or missing)."""
    async with connection() as conn:
        return sorted(await book.window_intents(conn, window) - listed)


async def finish(report: ReconciliationReport) -> ReconciliationReport:
    async with connection() as conn:
        await book.finish_reconciliation(conn, report)
    for found in report.discrepancies:
        discrepancies_found.add(1, {"kind": found.kind})
    return report


async def compared(
    window: ReconciliationWindow, intents: list[StripeIntent]
) -> ReconciliationReport:
    named = {i.order_id for i in intents if i.order_id}
    async with connection() as conn:
        orders = await book.order_money(conn, window, named)
    found = compare(intents, orders)
    if found:
        log.warning("reconciliation %s: %d discrepancies", window.reconciliation_id, len(found))
    report = ReconciliationReport(
        **window.model_dump(),
        status="completed",
        checked_orders=len(orders),
        checked_intents=len(intents),
        discrepancies=found,
    )
    return await finish(report)


async def stripe_intents(ctx: WorkflowContext, window: ReconciliationWindow) -> list[StripeIntent]:
    """Every intent Stripe created in the window (to the second, both ends: Stripe's `created`
    is in seconds), a page at a time, and those of the window's orders it did not list."""
    query = IntentQuery(
        created_gte=math.floor(window.since.timestamp()),
        created_lt=math.ceil(window.until.timestamp()) + 1,
    )
    intents: list[StripeIntent] = []
    while True:
        page = await calls.list_intents(ctx, query)
        intents += page.intents
        if not page.has_more or not page.intents:
            break
        query = query.model_copy(update={"starting_after": page.intents[-1].payment_intent_id})
    listed = {i.payment_intent_id for i in intents}
    missing = await ctx.run_typed("book-unlisted", unlisted, window=window, listed=listed)
    fetched = [calls.intent(ctx, IntentRef(payment_intent_id=pid)) for pid in missing]
    return intents + [await f for f in fetched]


@reconciliation.main(workflow_retention=RETENTION, ingress_private=True)
async def run(ctx: WorkflowContext, window: ReconciliationWindow) -> ReconciliationReport:
    if ctx.key() != window.reconciliation_id:
        raise TerminalError("reconciliation_id does not match the workflow key", status_code=400)
    await ctx.run_typed("book-started", started, window=window)
    try:
        intents = await stripe_intents(ctx, window)
    except TerminalError as e:  # Stripe refused the list: said in the report
        failed = ReconciliationReport(**window.model_dump(), status="failed", error=e.message)
        return await ctx.run_typed("book-failed", finish, report=failed)
    return await ctx.run_typed("compare", compared, window=window, intents=intents)


# On demand, for operators (the ADMIN_TOKEN, checked here as at the gateway).


async def operator(ctx: Context, token: str) -> None:
    await operator_once(ctx, token, "reconciliations are for operators only")


@reconciliations.handler()
async def request(ctx: Context, ask: ReconciliationAsk) -> ReconciliationReport:
    """Starts a reconciliation of [since, until); its report is `running` until it ends."""
    await operator(ctx, ask.operator_token)
    window = ReconciliationWindow(**ask.model_dump(exclude={"operator_token"}))
    # In the book before the answer, so the report can be asked for at once.
    await ctx.run_typed("book-started", started, window=window)
    ctx.workflow_send(run, key=window.reconciliation_id, arg=window)
    return ReconciliationReport(**window.model_dump(), status="running")


async def read(reconciliation_id: str | None, limit: int) -> list[ReconciliationReport]:
    async with connection() as conn:
        return await book.reconciliations(conn, reconciliation_id, limit)


@reconciliations.handler()
async def report(ctx: Context, lookup: ReconciliationLookup) -> BookReconciliation:
    await operator(ctx, lookup.operator_token)
    found = await read(lookup.reconciliation_id, 1)
    return BookReconciliation(report=found[0] if found else None)


@reconciliations.handler()
async def recent(ctx: Context, query: RecentReconciliations) -> ReconciliationList:
    """The latest runs, newest first."""
    await operator(ctx, query.operator_token)
    return ReconciliationList(reports=await read(None, query.limit))


# Daily: one object (key `daily`) holds the next day to run at and a delayed message to
# itself for it; each tick runs the day before and plans the next one.

NEXT_DAY = "next_day"
# After midnight UTC: the day before is over, and its last orders have ended.
RUN_AFTER_MIDNIGHT = timedelta(minutes=10)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def daily_window(day: date) -> ReconciliationWindow:
    """The day before `day`, whole (UTC)."""
    before = day - timedelta(days=1)
    return ReconciliationWindow(
        reconciliation_id=f"rec_daily_{before:%Y%m%d}", since=midnight(before), until=midnight(day)
    )


async def plan(ctx: ObjectContext, day: date) -> None:
    now = datetime.fromtimestamp(await ctx.time(), UTC)
    wait = max(midnight(day) + RUN_AFTER_MIDNIGHT - now, timedelta(0))  # late: at once
    ctx.set(NEXT_DAY, day.isoformat())
    ctx.object_send(tick, key=ctx.key(), arg=day.isoformat(), send_delay=wait)


@schedule.handler()
async def start(ctx: ObjectContext) -> str:
    """Keeps the daily run planned; the day it runs next. Called by the gateway whenever it
    starts and finds the shop ready: once planned, a call changes nothing."""
    planned = await ctx.get(NEXT_DAY, type_hint=str)
    if planned is None:
        today = datetime.fromtimestamp(await ctx.time(), UTC).date()
        await plan(ctx, today + timedelta(days=1))
        planned = (today + timedelta(days=1)).isoformat()
    return planned


@schedule.handler(ingress_private=True)  # only its own delayed message
async def tick(ctx: ObjectContext, day: str) -> None:
    if await ctx.get(NEXT_DAY, type_hint=str) != day:
        return  # not the tick planned (a stray copy): the planned one runs the day
    window = daily_window(date.fromisoformat(day))
    ctx.workflow_send(run, key=window.reconciliation_id, arg=window)
    await plan(ctx, date.fromisoformat(day) + timedelta(days=1))
