"""Live progress from Valkey: one subscription per gateway process, fanned out to every SSE
client in it, plus reads of an order's short history for clients that reconnect."""

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

from redis.exceptions import RedisError

from shop.shared import progress_feed as feed
from shop.shared.contracts.fulfilment import OrderStatus
from shop.shared.settings import ShopSettings
from shop.shared.telemetry import sse_push_lag

log = logging.getLogger(__name__)
Queue = asyncio.Queue[OrderStatus | None]


def pushed_status(raw: bytes | str, payment_page_url: str = "") -> feed.PushedStatus:
    """A status pushed through Valkey, which is a hint, not the order's record: its link to
    the customer's bank is kept only if it goes where payments' links go (https:, or the
    Stripe emulator's page in dev), so that whoever can publish to Valkey cannot put a
    `javascript:` or look-alike link on the order page. Raises ValueError if malformed."""
    status = feed.PushedStatus.model_validate_json(raw)
    url = status.action_url
    if url and not (url.startswith("https://") or trusted_page(url, payment_page_url)):
        log.warning("dropping a pushed bank link that is not https: for %s", status.order_id)
        status = status.model_copy(update={"action_url": None})
    return status


def trusted_page(url: str, base: str) -> bool:
    return bool(base) and url.startswith(base.rstrip("/") + "/")


class ProgressHub:
    def __init__(
        self,
        settings: ShopSettings,
        on_status: Callable[[OrderStatus], None] = lambda status: None,
        timeout: float = 1.0,
        payment_page_url: str = "",
    ) -> None:
        self.settings, self.on_status = settings, on_status
        self.payment_page_url = payment_page_url
        self.valkey = feed.valkey(settings, socket_timeout=timeout, socket_connect_timeout=timeout)
        # Each client's queue gets the order's events, and None when live updates were (or
        # may have been) interrupted: the signal to re-read the durable status.
        self.listeners: defaultdict[str, set[Queue]] = defaultdict(set)
        self.connected = False

    @contextlib.contextmanager
    def listen(self, order_id: str) -> Iterator[Queue]:
        queue: Queue = asyncio.Queue()
        self.listeners[order_id].add(queue)
        try:
            yield queue
        finally:
            self.listeners[order_id].discard(queue)
            if not self.listeners[order_id]:
                del self.listeners[order_id]

    async def history(self, order_id: str, after: int) -> list[OrderStatus]:
        """The order's events after seq `after`, oldest first; [] when Valkey has none."""
        try:
            entries = await self.valkey.xrange(feed.history_key(order_id), min=f"(0-{after}")
        except RedisError as e:
            log.warning("progress history for %s unavailable: %s", order_id, e)
            return []
        statuses: list[OrderStatus] = []
        # (redis-py types the answer and each entry's fields as optional; XRANGE gives neither.)
        for _, fields in entries or []:
            if fields is None:
                continue
            with contextlib.suppress(ValueError):  # malformed: ignored, as a live one is
                statuses.append(pushed_status(fields[b"status"], self.payment_page_url))
        return statuses

    def set_connected(self, connected: bool) -> None:
        """Every change wakes all clients to re-read the durable status: after an outage
        they may have missed events, and during one they must poll."""
        if connected != self.connected:
            self.connected = connected
            for queues in self.listeners.values():
                for queue in queues:
                    queue.put_nowait(None)

    def dispatch(self, raw: bytes) -> None:
        try:
            status = pushed_status(raw, self.payment_page_url)
        except ValueError:
            log.warning("ignoring malformed progress message: %r", raw[:200])
            return
        if status.stepped_at is not None:  # pushed by a fulfilment that says when
            sse_push_lag.record(max(time.time() - status.stepped_at, 0.0))
        self.on_status(status)
        for queue in self.listeners.get(status.order_id, ()):
            queue.put_nowait(status)

    async def run(self) -> None:
        """Subscribe and forward until cancelled, reconnecting whenever Valkey goes away.
        Clients miss nothing meanwhile: they fall back to reading the durable status."""
        backoff = 0.1
        while True:
            client = feed.valkey(self.settings, health_check_interval=5)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(feed.CHANNEL)
                    self.set_connected(True)
                    backoff = 0.1
                    log.info("subscribed to %s", feed.CHANNEL)
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self.dispatch(message["data"])
            except (RedisError, OSError) as e:
                if self.connected:
                    log.warning("Valkey subscription lost (%s); reconnecting", e)
                self.set_connected(False)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2)
            finally:
                await client.aclose()

    async def aclose(self) -> None:
        await self.valkey.aclose()
