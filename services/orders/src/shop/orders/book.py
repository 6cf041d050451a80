"""The order book's SQL: every statement the orders service runs, over one connection pool.

Writes are idempotent: a row keyed by (order id, seq) is written once, however often Restate
delivers or retries it, and an order's current status only ever moves to a higher seq.
"""

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from shop.orders.settings import DatabaseSettings
from shop.shared.models import (
    FINAL_STATES,
    BookEntry,
    FulfilmentResult,
    HistoryEntry,
    OrderFilter,
    OrderLine,
    OrderRecord,
    OrderStatus,
    OrderSummary,
    decode_cursor,
    encode_cursor,
)

SUMMARY = (
    "o.order_id, o.status, o.customer_email, o.total_cents, o.currency, o.created_at, o.updated_at"
)


def pool(settings: DatabaseSettings) -> AsyncConnectionPool:
    """Opened on first use (in the server's event loop); a connection that fails is replaced,
    so the pool heals by itself once PostgreSQL is back."""
    password = settings.orders_database_password.get_secret_value()
    return AsyncConnectionPool(
        settings.orders_database_url,
        kwargs={"password": password} if password else {},
        min_size=1,
        max_size=settings.orders_database_pool_size,
        timeout=settings.orders_database_timeout_seconds,
        check=AsyncConnectionPool.check_connection,
        open=False,
    )


async def record(conn: AsyncConnection[Any], entry: BookEntry) -> bool:
    """Writes one status change (and, with the first, the order); False when the book does
    not have the order (its first entry was never sent: an order older than the book)."""
    async with conn.transaction():
        if entry.order is not None:
            o = entry.order
            await conn.execute(
                "INSERT INTO orders (order_id, customer_email, currency, total_cents,"
                " fulfilment_version, trace_id, invocation_id, status, step, percent, message,"
                " seq, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', 'pending', 0, '', 0, %s, %s)"
                " ON CONFLICT (order_id) DO NOTHING",
                (
                    entry.order_id,
                    o.customer_email,
                    o.currency,
                    o.total_cents,
                    o.fulfilment_version,
                    o.trace_id,
                    o.invocation_id,
                    o.placed_at,
                    o.placed_at,
                ),
            )
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO order_lines (order_id, product_id, name, quantity,"
                    " unit_price_cents) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [
                        (entry.order_id, x.product_id, x.name, x.quantity, x.unit_price_cents)
                        for x in o.lines
                    ],
                )
        change = entry.model_dump(exclude={"order"})  # both statements' parameters
        known = await conn.execute(
            "INSERT INTO order_history (order_id, seq, status, step, message, reason)"
            " SELECT %(order_id)s, %(seq)s, %(status)s, %(step)s, %(message)s, %(reason)s"
            " WHERE EXISTS (SELECT 1 FROM orders WHERE order_id = %(order_id)s)"
            " ON CONFLICT (order_id, seq) DO NOTHING",
            change,
        )
        await conn.execute(
            "UPDATE orders SET status = %(status)s, step = %(step)s, percent = %(percent)s,"
            " message = %(message)s, reason = %(reason)s, seq = %(seq)s,"
            " payment_intent_id = coalesce(%(payment_intent_id)s, payment_intent_id),"
            " updated_at = clock_timestamp()"
            " WHERE order_id = %(order_id)s AND seq < %(seq)s",
            change,
        )
        return known.rowcount > 0 or await exists(conn, entry.order_id)


async def exists(conn: AsyncConnection[Any], order_id: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM orders WHERE order_id = %s", (order_id,))
    return await cur.fetchone() is not None


async def order_row(conn: AsyncConnection[Any], order_id: str) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM orders WHERE order_id = %s", (order_id,))
        return await cur.fetchone()


async def status(conn: AsyncConnection[Any], order_id: str) -> OrderStatus | None:
    """The order's last status, in the shape the workflow reports it (no personal data)."""
    row = await order_row(conn, order_id)
    if row is None:
        return None
    result = None
    if row["status"] in FINAL_STATES:
        result = FulfilmentResult(
            order_id=order_id,
            status=row["status"],
            payment_intent_id=row["payment_intent_id"],
            reason=row["reason"],
        )
    return OrderStatus(
        order_id=order_id,
        status=row["status"],
        step=row["step"],
        percent=row["percent"],
        message=row["message"],
        seq=row["seq"],
        result=result,
        trace_id=row["trace_id"],
    )


async def details(conn: AsyncConnection[Any], order_id: str) -> OrderRecord | None:
    row = await order_row(conn, order_id)
    if row is None:
        return None
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT product_id, name, quantity, unit_price_cents FROM order_lines"
            " WHERE order_id = %s ORDER BY product_id",
            (order_id,),
        )
        lines = [OrderLine(**line) for line in await cur.fetchall()]
        await cur.execute(
            "SELECT status, step, message, reason, at FROM order_history"
            " WHERE order_id = %s ORDER BY seq",
            (order_id,),
        )
        history = [HistoryEntry(**h) for h in await cur.fetchall()]
    return OrderRecord(**row, lines=lines, history=history)


async def find(
    conn: AsyncConnection[Any], where: OrderFilter, limit: int, cursor: str | None
) -> tuple[list[OrderSummary], str | None]:
    """Newest first, `limit` at a time; the cursor is where the last page ended (keyset
    pagination: a page costs the same however far back it is)."""
    clauses, args = [], {"limit": limit + 1}
    if where.status:
        clauses.append("o.status = %(status)s")
        args["status"] = where.status
    if where.email:
        clauses.append("lower(o.customer_email) = lower(%(email)s)")
        args["email"] = where.email
    if where.product_id:
        clauses.append(
            "EXISTS (SELECT 1 FROM order_lines l"
            " WHERE l.order_id = o.order_id AND l.product_id = %(product)s)"
        )
        args["product"] = where.product_id
    if where.since:
        clauses.append("o.created_at >= %(since)s")
        args["since"] = where.since
    if where.until:
        clauses.append("o.created_at < %(until)s")
        args["until"] = where.until
    if cursor:
        created_at, order_id = decode_cursor(cursor)
        clauses.append("(o.created_at, o.order_id) < (%(after_at)s, %(after_id)s)")
        args |= {"after_at": created_at, "after_id": order_id}
    sql = f"SELECT {SUMMARY} FROM orders o"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY o.created_at DESC, o.order_id DESC LIMIT %(limit)s"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, args)
        rows = await cur.fetchall()
    orders = [OrderSummary(**row) for row in rows[:limit]]
    more = len(rows) > limit
    return orders, encode_cursor(orders[-1].created_at, orders[-1].order_id) if more else None
