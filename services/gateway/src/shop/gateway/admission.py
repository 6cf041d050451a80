"""Admission control: each gateway process keeps at most `limit` of the orders it started in
progress at once, and answers 429 (with Retry-After) beyond that.

Without a bound, an offered load above capacity piles up in Restate until every order is slow
and the services time out and replay what they had done: throughput collapses. With it, the
excess waits at the client, and the orders admitted run at full speed.

An order leaves the count when its final progress event arrives through the live feed, or
after `max_age` seconds at the latest (an event can be lost: pushes are best effort). While
the feed is down nothing can be seen finishing, so admission stays open rather than shut.
"""

import time


class Overloaded(Exception):
    """Too many orders in progress: try again shortly."""


class InFlight:
    def __init__(self, limit: int, max_age: float) -> None:
        self.limit, self.max_age = limit, max_age
        self.started: dict[str, float] = {}  # order id -> when, oldest first
        self.starting = 0  # admitted, not yet started: concurrent requests count at once

    def admit(self, feed_connected: bool) -> None:
        """Overloaded when `limit` orders are in progress; otherwise a place is held until
        `start` or `abandon`."""
        horizon = time.monotonic() - self.max_age
        while self.started and next(iter(self.started.values())) < horizon:
            del self.started[next(iter(self.started))]
        if feed_connected and len(self.started) + self.starting >= self.limit:
            raise Overloaded()
        self.starting += 1

    def start(self, order_id: str) -> None:
        self.starting -= 1
        self.started.setdefault(order_id, time.monotonic())

    def abandon(self) -> None:
        self.starting -= 1

    def finish(self, order_id: str) -> None:
        self.started.pop(order_id, None)
