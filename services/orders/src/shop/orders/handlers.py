"""Orders: the order book's Restate handlers.

Writes go through `Orders`, a virtual object keyed by order id: one writer per order, taking
the workflow's entries in the order they were sent. Each write is an idempotent upsert, and a
handler that fails is retried by Restate until PostgreSQL takes it, so an outage of the
database delays the book and never an order. Reads go through `OrderBook`: an order's public
status by its id, and, with the operators' ADMIN_TOKEN, the records with customers and
amounts. A read is not a journaled step: it changes nothing (a retry reads again), and
customers' data stays out of Restate's journal. `Orders/refund` opens an operator's refund of
a completed order, whose workflow (refunds.py) does the rest.
"""

import restate
from restate import Context, ObjectContext, TerminalError

from shop.orders import book
from shop.orders.db import connection
from shop.orders.refunds import run as run_refund
from shop.orders.settings import settings
from shop.shared import names
from shop.shared.contracts.common import OrderRef
from shop.shared.contracts.orders import (
    BookEntry,
    BookRecord,
    BookRefund,
    BookStatus,
    OrderLookup,
    OrderPage,
    OrderQuery,
    PublicRefunds,
    RefundAsk,
    RefundLookup,
    RefundOpened,
)
from shop.shared.crash import crash_point
from shop.shared.telemetry import step

orders = restate.VirtualObject(names.ORDERS)
order_book = restate.Service(names.ORDER_BOOK)
log = restate.getLogger(__name__)


async def write(entry: BookEntry) -> bool:
    with step("book write", entry.order_id, **{"shop.order.step": entry.step}):
        async with connection() as conn:
            return await book.record(conn, entry)


@orders.handler(ingress_private=True)  # only the order's workflow writes its record
async def record(ctx: ObjectContext, entry: BookEntry) -> None:
    if ctx.key() != entry.order_id:
        raise TerminalError("order_id does not match the object key", status_code=400)
    # Not a journaled step (which costs Restate an entry and a round trip per write): the
    # write is an upsert keyed by (order, seq), so a retry of this handler writes nothing twice.
    if not await write(entry):
        log.warning("order %s is not in the book: its status %s is not kept", ctx.key(), entry.seq)


def given(arg: object) -> None:
    """A call without its body (the ingress lets one through) is refused, not retried."""
    if arg is None:
        raise TerminalError("a JSON body is required", status_code=400)


def operator(token: str) -> None:
    if not settings.is_operator(token):
        raise TerminalError("the order book's records are for operators only", status_code=403)


async def read_status(order_id: str) -> BookStatus:
    async with connection() as conn:
        return BookStatus(status=await book.status(conn, order_id))


@order_book.handler()
async def status(ctx: Context, ref: OrderRef) -> BookStatus:
    """An order's last status (what anyone with its id may see), for an order that Restate no
    longer keeps."""
    given(ref)
    return await read_status(ref.order_id)


async def read_details(order_id: str) -> BookRecord:
    async with connection() as conn:
        return BookRecord(record=await book.details(conn, order_id))


@order_book.handler()
async def details(ctx: Context, lookup: OrderLookup) -> BookRecord:
    """One order's full record: lines, customer, amounts and history (operators only)."""
    given(lookup)
    operator(lookup.operator_token)
    return await read_details(lookup.order_id)


async def read_page(query: OrderQuery) -> OrderPage:
    async with connection() as conn:
        found, cursor = await book.find(conn, query.filter, query.limit, query.cursor)
    return OrderPage(orders=found, next_cursor=cursor)


@order_book.handler()
async def find(ctx: Context, query: OrderQuery) -> OrderPage:
    """A page of orders, newest first, filtered (operators only)."""
    given(query)
    operator(query.operator_token)
    return await read_page(query)


async def is_operator(token: str) -> bool:
    return settings.is_operator(token)


async def operator_once(ctx: Context, token: str, refusal: str) -> None:
    """`operator` as a journaled step, for handlers that act: a replay takes the same path
    whatever the settings are now."""
    if not await ctx.run_typed("is-operator", is_operator, token=token):
        raise TerminalError(refusal, status_code=403)


async def open_refund(order_id: str, ask: RefundAsk) -> RefundOpened:
    async with connection() as conn:
        opened = await book.open_refund(conn, order_id, ask)
    crash_point("orders-after-refund-opened")
    return opened


@orders.handler()
async def refund(ctx: ObjectContext, ask: RefundAsk) -> RefundOpened:
    """An operator's refund of the order (with ADMIN_TOKEN): opened in the book, if the order
    completed and the amount is at most what is left, and its workflow started. Journaled
    steps, so a retry after a crash finds the refund it opened (by its id) and starts the
    same workflow, which Restate runs once per id."""
    given(ask)
    await operator_once(ctx, ask.operator_token, "refunds take the operators' ADMIN_TOKEN")
    opened = await ctx.run_typed("open-refund", open_refund, order_id=ctx.key(), ask=ask)
    if opened.outcome == "started" and opened.order is not None:
        ctx.workflow_send(run_refund, key=opened.order.refund_id, arg=opened.order)
    return opened.model_copy(update={"order": None})  # the caller needs only its id


async def read_refund(lookup: RefundLookup) -> BookRefund:
    async with connection() as conn:
        return BookRefund(refund=await book.refund(conn, lookup.order_id, lookup.refund_id))


@order_book.handler(name="refund")
async def refund_record(ctx: Context, lookup: RefundLookup) -> BookRefund:
    """One refund of an order and where it stands (operators only)."""
    given(lookup)
    operator(lookup.operator_token)
    return await read_refund(lookup)


async def read_public_refunds(order_id: str) -> PublicRefunds:
    async with connection() as conn:
        return PublicRefunds(refunds=await book.public_refunds(conn, order_id))


@order_book.handler()
async def refunds(ctx: Context, ref: OrderRef) -> PublicRefunds:
    """An order's refunds as its customer's page shows them: amounts, when, how they stand."""
    given(ref)
    return await read_public_refunds(ref.order_id)
