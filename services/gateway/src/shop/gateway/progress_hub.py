"""One Valkey subscription per gateway process, fanned out to every SSE client in it."""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator

import redis.asyncio as redis
from redis.exceptions import RedisError

from shop.shared import names
from shop.shared.models import OrderStatus

log = logging.getLogger(__name__)


class ProgressHub:
    def __init__(self, valkey_url: str) -> None:
        self.valkey_url = valkey_url
        self.listeners: defaultdict[str, set[asyncio.Queue[OrderStatus]]] = defaultdict(set)
        self.connected = asyncio.Event()

    @contextlib.contextmanager
    def listen(self, order_id: str) -> Iterator[asyncio.Queue[OrderStatus]]:
        queue: asyncio.Queue[OrderStatus] = asyncio.Queue()
        self.listeners[order_id].add(queue)
        try:
            yield queue
        finally:
            self.listeners[order_id].discard(queue)
            if not self.listeners[order_id]:
                del self.listeners[order_id]

    def dispatch(self, raw: bytes) -> None:
        try:
            status = OrderStatus.model_validate_json(raw)
        except ValueError:
            log.warning("ignoring malformed progress message: %r", raw[:200])
            return
        for queue in self.listeners.get(status.order_id, ()):
            queue.put_nowait(status)

    async def run(self) -> None:
        """Subscribe and forward until cancelled, reconnecting whenever Valkey goes away."""
        backoff = 0.1
        while True:
            client = redis.Redis.from_url(self.valkey_url, health_check_interval=10)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(names.PROGRESS_CHANNEL)
                    self.connected.set()
                    backoff = 0.1
                    log.info("subscribed to %s", names.PROGRESS_CHANNEL)
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self.dispatch(message["data"])
            except (RedisError, OSError) as e:
                self.connected.clear()
                log.warning("Valkey subscription lost (%s); retrying in %.1fs", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5)
            finally:
                await client.aclose()
