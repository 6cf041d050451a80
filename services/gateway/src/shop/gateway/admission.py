"""Admission control: each gateway process keeps at most `limit` of the orders it started
working at once, and answers 429 (with Retry-After) beyond that. An order waiting out its
cancellation window or for the customer's bank does not count: it costs nothing meanwhile, and
counting it would cap the shop at `limit` / window orders per second however idle it was.

Without a bound, an offered load above capacity piles up in Restate until every order is slow
and the services time out and replay what they had done: throughput collapses. With it, the
excess waits at the client, and the orders admitted run at full speed.

The live feed tells where each order is: it leaves the count at a waiting step, comes back at
the next, and leaves for good when it ends, or after `max_age` seconds at the latest (an event
can be lost: pushes are best effort). While the feed is down nothing can be seen finishing, so
admission stays open rather than shut.
"""

import time

from shop.shared.contracts.fulfilment import OrderStatus
from shop.shared.progress_feed import WAITING_STEPS


class Overloaded(Exception):
    """Too many orders in progress: try again shortly."""


class InFlight:
    def __init__(self, limit: int, max_age: float) -> None:
        self.limit, self.max_age = limit, max_age
        self.started: dict[str, float] = {}  # order id -> when, oldest first
        self.waiting: set[str] = set()  # of those, the ones at a waiting step
        self.starting = 0  # admitted, not yet started: concurrent requests count at once

    def check(self, feed_connected: bool) -> None:
        """Overloaded when `limit` orders are working."""
        horizon = time.monotonic() - self.max_age
        while self.started and next(iter(self.started.values())) < horizon:
            self.finish(next(iter(self.started)))
        working = len(self.started) - len(self.waiting) + self.starting
        if feed_connected and working >= self.limit:
            raise Overloaded()

    def admit(self, feed_connected: bool) -> None:
        """Overloaded when `limit` orders are working; otherwise a place is held until
        `start` or `abandon`."""
        self.check(feed_connected)
        self.starting += 1

    def start(self, order_id: str) -> None:
        self.starting -= 1
        self.started.setdefault(order_id, time.monotonic())

    def abandon(self) -> None:
        self.starting -= 1

    def finish(self, order_id: str) -> None:
        self.started.pop(order_id, None)
        self.waiting.discard(order_id)

    def observe(self, status: OrderStatus) -> None:
        """An order's progress, from the live feed."""
        if status.is_final:
            self.finish(status.order_id)
        elif status.step in WAITING_STEPS and status.order_id in self.started:
            self.waiting.add(status.order_id)
        else:
            self.waiting.discard(status.order_id)
