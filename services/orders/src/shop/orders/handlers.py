"""Orders: the order book's Restate handlers.

Writes go through `Orders`, a virtual object keyed by order id: one writer per order, taking
the workflow's entries in the order they were sent. Each write is an idempotent upsert, and a
handler that fails is retried by Restate until PostgreSQL takes it, so an outage of the
database delays the book and never an order. Reads go through `OrderBook`: an order's public
status by its id, and, with the operators' ADMIN_TOKEN, the records with customers and
amounts. A read is not a journaled step: it changes nothing (a retry reads again), and
customers' data stays out of Restate's journal.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import psycopg
import restate
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from restate import Context, ObjectContext, TerminalError

from shop.orders import book
from shop.orders.settings import settings
from shop.shared import names
from shop.shared.models import (
    BookEntry,
    BookRecord,
    BookStatus,
    OrderLookup,
    OrderPage,
    OrderQuery,
    OrderRef,
)
from shop.shared.telemetry import step

orders = restate.VirtualObject(names.ORDERS)
order_book = restate.Service(names.ORDER_BOOK)
log = restate.getLogger(__name__)


@cache
def connections() -> AsyncConnectionPool:
    return book.pool(settings)


async def open_pool() -> AsyncConnectionPool:
    pool = connections()
    await pool.open(wait=False)  # idempotent; connects in the background
    return pool


@asynccontextmanager
async def connection() -> AsyncIterator[AsyncConnection[Any]]:
    """A connection from the pool. A value PostgreSQL refuses (a NUL in a string, say) is
    the caller's mistake, which no retry mends: a terminal error, answered once. Anything
    else (PostgreSQL down, a connection lost) is retried by Restate until it is back."""
    async with (await open_pool()).connection() as conn:
        try:
            yield conn
        except psycopg.DataError as e:
            raise TerminalError(f"the book cannot take that: {e}", status_code=400) from e


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
