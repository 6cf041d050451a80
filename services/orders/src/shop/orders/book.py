"""The order book's SQL: every statement the orders service runs, over one connection pool.

Writes are idempotent: a row keyed by (order id, seq) is written once, however often Restate
delivers or retries it, and an order's current status only ever moves to a higher seq. A
refund is a row keyed by its id, opened under a lock of its order's row (so two refunds at
once cannot give back more than was paid) and settled once.
"""

import select
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from shop.orders.settings import DatabaseSettings
from shop.shared.contracts.common import OrderLine, money
from shop.shared.contracts.fulfilment import (
    FINAL_STATES,
    FulfilmentResult,
    OrderState,
    OrderStatus,
    Step,
)
from shop.shared.contracts.orders import (
    REFUNDED_STATES,
    ActionRecord,
    BookEntry,
    BookMoney,
    HistoryEntry,
    OrderFilter,
    OrderRecord,
    OrderSummary,
    PublicRefund,
    ReconciliationReport,
    ReconciliationWindow,
    RefundAsk,
    RefundEntry,
    RefundOpened,
    RefundOrder,
    RefundOutcome,
    decode_cursor,
    encode_cursor,
)

SUMMARY = (
    "o.order_id, o.status, o.customer_email, o.total_cents, o.currency, o.created_at, o.updated_at"
)


async def still_open(conn: AsyncConnection[Any]) -> None:
    """The pool's check of a connection it hands out: refused (and replaced) when PostgreSQL
    has closed it, or has sent on it unasked, which an idle connection of ours only gets
    before the server closes it (we LISTEN to nothing). One poll of the socket, where the
    pool's own check_connection is a round trip to PostgreSQL per write (7% of this
    service's CPU per order). A connection that dies unseen fails its write, which Restate
    retries on the next one."""
    if conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    waiting = select.poll()  # not select(): it refuses a descriptor numbered 1024 or more
    waiting.register(conn.fileno(), select.POLLIN)
    if waiting.poll(0):
        await conn.close()  # so that the pool drops it, where it would put it back as good
        raise psycopg.OperationalError("PostgreSQL closed the connection")


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
        check=still_open,
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


BANK: Step = "authenticating"  # 3-D Secure: the order waits for the customer's bank


async def running_orders(conn: AsyncConnection[Any]) -> dict[str, tuple[int, float]]:
    """Orders running, by what they wait for ("bank": 3-D Secure, "none"): how many, and the
    longest time one has gone since its last status change (seconds)."""
    cur = await conn.execute(
        "SELECT CASE WHEN step = %s THEN 'bank' ELSE 'none' END, count(*),"
        " extract(epoch FROM clock_timestamp() - min(updated_at))::float8"
        " FROM orders WHERE status = 'running' GROUP BY 1",
        (BANK,),
    )
    return {waiting: (count, longest) for waiting, count, longest in await cur.fetchall()}


async def exists(conn: AsyncConnection[Any], order_id: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM orders WHERE order_id = %s", (order_id,))
    return await cur.fetchone() is not None


async def order_row(conn: AsyncConnection[Any], order_id: str) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM orders WHERE order_id = %s", (order_id,))
        return await cur.fetchone()


async def status(conn: AsyncConnection[Any], order_id: str) -> OrderStatus | None:
    """The order's last status, in the shape the workflow reports it (no personal data): a
    refunded order was completed (its refunds are told apart)."""
    row = await order_row(conn, order_id)
    if row is None:
        return None
    state: OrderState = "completed" if row["status"] in REFUNDED_STATES else row["status"]
    result = None
    if state in FINAL_STATES:
        result = FulfilmentResult(
            order_id=order_id,
            status=state,
            payment_intent_id=row["payment_intent_id"],
            reason=row["reason"],
        )
    return OrderStatus(
        order_id=order_id,
        status=state,
        step=row["step"],
        percent=row["percent"],
        message=row["message"],
        seq=row["seq"],
        result=result,
        trace_id=row["trace_id"],
    )


async def order_lines(cur: Any, order_id: str) -> list[OrderLine]:
    """The order's lines, on a cursor that gives rows as dicts."""
    await cur.execute(
        "SELECT product_id, name, quantity, unit_price_cents FROM order_lines"
        " WHERE order_id = %s ORDER BY product_id",
        (order_id,),
    )
    return [OrderLine(**line) for line in await cur.fetchall()]


async def details(conn: AsyncConnection[Any], order_id: str) -> OrderRecord | None:
    row = await order_row(conn, order_id)
    if row is None:
        return None
    async with conn.cursor(row_factory=dict_row) as cur:
        lines = await order_lines(cur, order_id)
        await cur.execute(
            "SELECT status, step, message, reason, at FROM order_history"
            " WHERE order_id = %s ORDER BY seq",
            (order_id,),
        )
        history = [HistoryEntry(**h) for h in await cur.fetchall()]
    refunds = await order_refunds(conn, order_id)
    history = sorted(history + [refund_history(r) for r in refunds], key=lambda h: h.at)
    refunded = sum(r.amount_cents for r in refunds if r.status == "succeeded")
    return OrderRecord(
        **row,
        lines=lines,
        history=history,
        refunds=refunds,
        refunded_cents=refunded,
        actions=await actions(conn, order_id),
    )


async def actions(conn: AsyncConnection[Any], order_id: str) -> list[ActionRecord]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT action, invocation_id, target, actor, outcome, at FROM operator_actions"
            " WHERE order_id = %s ORDER BY at",
            (order_id,),
        )
        return [ActionRecord(**row) for row in await cur.fetchall()]


async def record_action(conn: AsyncConnection[Any], order_id: str, done: ActionRecord) -> None:
    await conn.execute(
        "INSERT INTO operator_actions (order_id, action, invocation_id, target, actor, outcome)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (order_id, done.action, done.invocation_id, done.target, done.actor, done.outcome),
    )


def refund_history(refund: RefundEntry) -> HistoryEntry:
    """A refund as a line of its order's history: where it stands now."""
    amount = money(refund.amount_cents, refund.currency)
    restocked = ", items back in stock" if refund.restock and refund.status == "succeeded" else ""
    return HistoryEntry(
        status=f"refund {refund.status}",
        step="refund",
        message=f"Refund {refund.refund_id} of {amount}: {refund.reason}{restocked}",
        at=refund.updated_at,
        reason=refund.failure_reason,
    )


REFUND = (
    "r.refund_id, r.order_id, r.amount_cents, o.currency, r.reason, r.restock, r.status,"
    " r.failure_reason, r.stripe_refund_id, r.requested_at, r.updated_at"
    " FROM refunds r JOIN orders o USING (order_id)"
)


async def order_refunds(conn: AsyncConnection[Any], order_id: str) -> list[RefundEntry]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {REFUND} WHERE r.order_id = %s ORDER BY r.requested_at, r.refund_id",
            (order_id,),
        )
        return [RefundEntry(**r) for r in await cur.fetchall()]


async def public_refunds(conn: AsyncConnection[Any], order_id: str) -> list[PublicRefund]:
    return [PublicRefund(**r.model_dump()) for r in await order_refunds(conn, order_id)]


async def refund(conn: AsyncConnection[Any], order_id: str, refund_id: str) -> RefundEntry | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {REFUND} WHERE r.refund_id = %s AND r.order_id = %s", (refund_id, order_id)
        )
        row = await cur.fetchone()
    return RefundEntry(**row) if row else None


REFUNDABLE = frozenset({"completed", "partially_refunded", "refunded"})


async def open_refund(conn: AsyncConnection[Any], order_id: str, ask: RefundAsk) -> RefundOpened:
    """A new refund of the order, `pending`, if the book says it may be: the order completed,
    the amount at most what is left (the refunds not failed count against it). The same
    request again (its refund id, or its Idempotency-Key and body) is the same refund."""
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM orders WHERE order_id = %s FOR UPDATE", (order_id,))
        order = await cur.fetchone()
        if order is None:
            return RefundOpened(outcome="unknown_order", message=f"no order {order_id}")
        await cur.execute(
            "SELECT * FROM refunds WHERE order_id = %s ORDER BY requested_at", (order_id,)
        )
        refunds = await cur.fetchall()
        for r in refunds:
            if r["refund_id"] == ask.refund_id:  # this very request, retried
                return RefundOpened(
                    outcome="started",
                    refund_id=r["refund_id"],
                    order=await refund_order(cur, order, r),
                )
            if ask.key is not None and r["idempotency_key"] == ask.key:
                if r["fingerprint"] != ask.fingerprint:
                    return RefundOpened(outcome="conflict")
                return RefundOpened(outcome="replayed", refund_id=r["refund_id"])
        if order["status"] not in REFUNDABLE or order["payment_intent_id"] is None:
            why = f"only a completed order is refunded; this one is {order['status']}"
            return RefundOpened(outcome="not_completed", message=why)
        given = [r for r in refunds if r["status"] != "failed"]
        left = order["total_cents"] - sum(r["amount_cents"] for r in given)
        amount = ask.amount_cents or left
        if left <= 0 or amount > left:
            why = f"{money(left, order['currency'])} is left to refund"
            return RefundOpened(outcome="too_much", message=why)
        # The items go back on the shelf once, whichever refund asks first.
        restock = ask.restock and not any(r["restock"] for r in given)
        await cur.execute(
            "INSERT INTO refunds (refund_id, order_id, amount_cents, reason, restock, status,"
            " idempotency_key, fingerprint) VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s)"
            " RETURNING *",
            (ask.refund_id, order_id, amount, ask.reason, restock, ask.key, ask.fingerprint),
        )
        row = await cur.fetchone()
        assert row is not None
        return RefundOpened(
            outcome="started", refund_id=ask.refund_id, order=await refund_order(cur, order, row)
        )


async def refund_order(cur: Any, order: dict[str, Any], refund: dict[str, Any]) -> RefundOrder:
    """What the refund's workflow needs: the refund, its order's payment, customer, lines."""
    return RefundOrder(
        refund_id=refund["refund_id"],
        order_id=refund["order_id"],
        payment_intent_id=order["payment_intent_id"],
        amount_cents=refund["amount_cents"],
        currency=order["currency"],
        reason=refund["reason"],
        restock=refund["restock"],
        customer_email=order["customer_email"],
        lines=await order_lines(cur, refund["order_id"]),
    )


async def settle_refund(conn: AsyncConnection[Any], outcome: RefundOutcome) -> None:
    """The refund's end (once: a settled refund stays as it is), and the order's status from
    all that its refunds gave back: refunded in full, in part, or (none) completed."""
    async with conn.transaction():
        await conn.execute(
            "SELECT 1 FROM orders WHERE order_id = %s FOR UPDATE", (outcome.order_id,)
        )
        await conn.execute(
            "UPDATE refunds SET status = %(status)s, failure_reason = %(failure_reason)s,"
            " stripe_refund_id = %(stripe_refund_id)s, updated_at = clock_timestamp()"
            " WHERE refund_id = %(refund_id)s AND status = 'pending'",
            outcome.model_dump(),
        )
        await conn.execute(
            "UPDATE orders o SET status = CASE"
            "   WHEN back.cents >= o.total_cents THEN 'refunded'"
            "   WHEN back.cents > 0 THEN 'partially_refunded' ELSE 'completed' END,"
            " updated_at = clock_timestamp()"
            " FROM (SELECT coalesce(sum(amount_cents), 0) AS cents FROM refunds"
            "       WHERE order_id = %(order_id)s AND status = 'succeeded') back"
            " WHERE o.order_id = %(order_id)s AND o.status IN"
            " ('completed', 'partially_refunded', 'refunded')",
            outcome.model_dump(),
        )


async def find(
    conn: AsyncConnection[Any], where: OrderFilter, limit: int, cursor: str | None
) -> tuple[list[OrderSummary], str | None]:
    """Newest first, `limit` at a time; the cursor is where the last page ended (keyset
    pagination: a page costs the same however far back it is)."""
    clauses: list[str] = []
    args: dict[str, object] = {"limit": limit + 1}
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


async def order_money(
    conn: AsyncConnection[Any], window: ReconciliationWindow, order_ids: set[str]
) -> dict[str, BookMoney]:
    """Each order placed in the window, and each order named (by Stripe), with its money:
    total, and what its refunds gave back."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT o.order_id, o.status, o.total_cents, o.payment_intent_id,"
            " coalesce(sum(r.amount_cents) FILTER (WHERE r.status = 'succeeded'), 0)"
            "   AS refunded_cents"
            " FROM orders o LEFT JOIN refunds r USING (order_id)"
            " WHERE (o.created_at >= %s AND o.created_at < %s) OR o.order_id = ANY(%s)"
            " GROUP BY o.order_id",
            (window.since, window.until, sorted(order_ids)),
        )
        return {row["order_id"]: BookMoney(**row) for row in await cur.fetchall()}


async def start_reconciliation(conn: AsyncConnection[Any], window: ReconciliationWindow) -> None:
    await conn.execute(
        "INSERT INTO reconciliations (reconciliation_id, since, until, status)"
        " VALUES (%s, %s, %s, 'running') ON CONFLICT (reconciliation_id) DO NOTHING",
        (window.reconciliation_id, window.since, window.until),
    )


async def finish_reconciliation(conn: AsyncConnection[Any], report: ReconciliationReport) -> None:
    found = [d.model_dump() for d in report.discrepancies]
    await conn.execute(
        "UPDATE reconciliations SET status = %s, checked_orders = %s, checked_intents = %s,"
        " discrepancies = %s, error = %s, finished_at = clock_timestamp()"
        " WHERE reconciliation_id = %s AND status = 'running'",
        (
            report.status,
            report.checked_orders,
            report.checked_intents,
            Jsonb(found),
            report.error,
            report.reconciliation_id,
        ),
    )


async def reconciliations(
    conn: AsyncConnection[Any], reconciliation_id: str | None = None, limit: int = 1
) -> list[ReconciliationReport]:
    """One run by its id, or the latest `limit` runs, newest first."""
    where = "WHERE reconciliation_id = %(id)s" if reconciliation_id else ""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT * FROM reconciliations {where}"
            " ORDER BY started_at DESC, reconciliation_id DESC LIMIT %(limit)s",
            {"id": reconciliation_id, "limit": limit},
        )
        return [ReconciliationReport(**row) for row in await cur.fetchall()]


async def window_intents(conn: AsyncConnection[Any], window: ReconciliationWindow) -> set[str]:
    """The payments of the orders placed in the window."""
    cur = await conn.execute(
        "SELECT payment_intent_id FROM orders WHERE created_at >= %s AND created_at < %s"
        " AND payment_intent_id IS NOT NULL",
        (window.since, window.until),
    )
    return {row[0] for row in await cur.fetchall()}
