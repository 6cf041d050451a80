"""What the orders service reports when Prometheus scrapes it, read then (at most every 10 s):
Restate's invocations by state (shop.shared.metrics), the orders still running by whether they
wait for the customer's bank (from the book), and how far the book lags behind the workflows
that write it (from Restate: its status changes not yet written). Every replica reports the
same values: the alerts take the max across them, not the sum."""

import asyncio
import logging
import time

from prometheus_client import Gauge

from shop.orders import book, db
from shop.orders.settings import settings
from shop.shared import names
from shop.shared.metrics import BeforeScrape, invocation_states
from shop.shared.restate_admin import AdminUnavailable, RestateAdmin

log = logging.getLogger(__name__)
WAITING = ("bank", "none")  # at 0 when there are none, not absent
orders_running = Gauge(
    "shop_orders_running",
    "Orders the book has as running, by what they wait for: the customer's bank (3-D Secure)"
    " or nothing (working, or stuck)",
    ["waiting"],
)
orders_running_longest = Gauge(
    "shop_orders_running_longest_seconds",
    "Of the orders running, the longest since its last status change in the book (placed,"
    " or back from the customer's bank), by what they wait for",
    ["waiting"],
)
book_backlog = Gauge(
    "shop_book_backlog",
    "Status changes sent to the book that it has not written yet (Restate's unfinished"
    " Orders/record invocations)",
)
book_lag = Gauge(
    "shop_book_lag_seconds",
    "How long the oldest status change not yet written to the book has waited (0 when none)",
)
# The oldest's age by Restate's clock, so that no clock of ours is compared with it. Both
# times in ms, whatever their unit (now() is in ns, created_at in ms, in Restate 1.7).
MS = "CAST(arrow_cast({}, 'Timestamp(Millisecond, None)') AS BIGINT)"
UNWRITTEN = (
    f"SELECT count(*) AS n, coalesce({MS.format('now()')} - {MS.format('min(created_at)')}, 0)"
    f" AS age_ms FROM sys_invocation WHERE target_service_name = '{names.ORDERS}'"
    " AND target_handler_name = 'record' AND status != 'completed'"
)


async def read_running() -> None:
    try:
        async with asyncio.timeout(2), db.connection() as conn:
            rows = await book.running_orders(conn)
    except Exception as e:  # the series keep the values last read; the scrape still answers
        log.warning("running orders not read: %s", e)
        return
    for waiting in WAITING:
        count, longest = rows.get(waiting, (0, 0.0))
        orders_running.labels(waiting).set(count)
        orders_running_longest.labels(waiting).set(longest)


def read_book_lag(admin: RestateAdmin) -> BeforeScrape:
    async def read() -> None:
        try:
            [row] = await admin.query(UNWRITTEN)
        except AdminUnavailable as e:
            log.warning("book lag not read: %s", e)
            return
        book_backlog.set(row["n"])
        book_lag.set(max(row["age_ms"], 0) / 1000)

    return read


# Restate's SQL scans every invocation it keeps (a day of journals, a week of orders): at 15k
# kept, ~60 ms of Restate's CPU per query, growing with the traffic. So the reads are made at
# most this often, however often (and by however many Prometheus replicas) this is scraped;
# a scrape in between gets the values last read. Below the production scrape interval (15 s),
# so that each of its scrapes reads afresh.
READ_EVERY_SECONDS = 10.0


def before_scrape() -> BeforeScrape:
    admin = RestateAdmin(settings.restate_admin_urls, timeout=2)
    reads = (invocation_states(admin), read_book_lag(admin), read_running)
    last_read = -READ_EVERY_SECONDS

    async def read_all() -> None:
        nonlocal last_read
        if time.monotonic() - last_read < READ_EVERY_SECONDS:
            return
        last_read = time.monotonic()
        await asyncio.gather(*(read() for read in reads))

    return read_all
