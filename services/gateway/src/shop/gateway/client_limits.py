"""What one client may take of a gateway process, so that no client closes the shop for the
others: orders placed (a token bucket per client address: a burst, then a steady rate, which
also keeps one client from holding the admission bound), and live-progress streams held per
client, per order and in all.

A client is its address as the gateway sees it. Behind a proxy, have the proxy set
X-Forwarded-For and tell the gateway to trust it (FORWARDED_ALLOW_IPS, uvicorn's setting), or
every customer is the proxy; the proxy can also hold limits of its own, across processes. The
counts are per process, like the admission bound."""

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from shop.gateway.admission import Overloaded

# Beyond this many clients remembered, those whose bucket has filled up again are forgotten.
REMEMBERED_CLIENTS = 10_000


class TooMany(Overloaded):
    """This client (or order) has taken its share: 429, with when to try again."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.message, self.retry_after = message, retry_after


@dataclass
class Bucket:
    tokens: float
    at: float


class ClientLimits:
    def __init__(
        self,
        orders_per_minute: int,
        streams_per_client: int,
        streams_per_order: int,
        streams_in_all: int,
    ) -> None:
        """0 turns a limit off."""
        self.rate = orders_per_minute / 60
        self.burst = max(1, orders_per_minute // 3)
        self.buckets: dict[str, Bucket] = {}
        self.streams_per_client = streams_per_client
        self.streams_per_order = streams_per_order
        self.streams_in_all = streams_in_all
        self.streams_of_client: Counter[str] = Counter()
        self.streams_of_order: Counter[str] = Counter()

    def take_order(self, client: str) -> None:
        """One order's token from the client's bucket, or TooMany."""
        if not self.rate:
            return
        now = time.monotonic()
        bucket = self.buckets.get(client) or Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens < 1:
            wait = math.ceil((1 - bucket.tokens) / self.rate)
            raise TooMany(f"too many orders from your address; try again in {wait} s", wait)
        bucket.tokens -= 1
        self.buckets[client] = bucket
        if len(self.buckets) > REMEMBERED_CLIENTS:
            self.forget_full(now)

    def forget_full(self, now: float) -> None:
        full = [
            c for c, b in self.buckets.items() if b.tokens + (now - b.at) * self.rate >= self.burst
        ]
        for client in full:
            del self.buckets[client]

    def hold_stream(self, client: str, order_id: str) -> Callable[[], None]:
        """One of the client's, the order's and the process's streams, or TooMany; call what
        it returns once the stream has ended (more calls change nothing)."""
        if self.streams_per_client and self.streams_of_client[client] >= self.streams_per_client:
            raise TooMany("too many progress streams from your address")
        if self.streams_per_order and self.streams_of_order[order_id] >= self.streams_per_order:
            raise TooMany("too many progress streams of this order")
        if self.streams_in_all and self.streams_of_client.total() >= self.streams_in_all:
            raise TooMany("too many progress streams on this server")
        self.streams_of_client[client] += 1
        self.streams_of_order[order_id] += 1
        held = [(self.streams_of_client, client), (self.streams_of_order, order_id)]

        def release() -> None:
            while held:
                counts, key = held.pop()
                counts[key] -= 1
                if not counts[key]:
                    del counts[key]

        return release
