"""Progress reporting: durable workflow state first (authoritative), then a best-effort push
to Valkey for live updates, which can never fail or stall the workflow."""

import asyncio
import logging
from functools import cache

import redis.asyncio as redis
from restate import RunOptions, WorkflowContext

from shop.fulfilment.settings import settings
from shop.shared import progress_feed as feed
from shop.shared.models import FulfilmentResult, OrderState, OrderStatus

log = logging.getLogger(__name__)
STATUS_KEY = "status"


@cache
def valkey() -> redis.Redis:
    timeout = settings.progress_push_timeout_seconds
    return redis.Redis.from_url(
        settings.valkey_url, socket_timeout=timeout, socket_connect_timeout=timeout
    )


async def push(status: OrderStatus) -> bool:
    """Append to the order's short history, then publish to live subscribers."""
    data, key = status.model_dump_json(), feed.history_key(status.order_id)
    try:
        async with asyncio.timeout(settings.progress_push_timeout_seconds):
            async with valkey().pipeline(transaction=True) as pipe:
                pipe.xadd(
                    key, {"status": data}, id=feed.entry_id(status), maxlen=feed.HISTORY_MAXLEN
                )
                pipe.expire(key, feed.HISTORY_TTL_SECONDS)
                pipe.publish(feed.CHANNEL, data)
                await pipe.execute(raise_on_error=False)  # an id added before is fine
        return True
    except Exception as e:  # best effort by design: the durable state already holds it
        log.warning("progress push for %s failed: %s", status.order_id, e)
        return False


class Progress:
    """Reports the order's steps, numbered: the number is the event id the browser sees, the
    same on every replay because the workflow's code path is."""

    def __init__(self, ctx: WorkflowContext, order_id: str) -> None:
        self.ctx, self.order_id, self.seq, self.step = ctx, order_id, 0, "pending"

    async def __call__(
        self,
        step: str,
        percent: int,
        message: str,
        status: OrderState = "running",
        result: FulfilmentResult | None = None,
        cancellable: bool = False,
    ) -> None:
        self.seq, self.step = self.seq + 1, step
        update = OrderStatus(
            order_id=self.order_id,
            status=status,
            step=step,
            percent=percent,
            message=message,
            seq=self.seq,
            cancellable=cancellable,
            result=result,
        )
        self.ctx.set(STATUS_KEY, update)
        # Journaled, so a replay does not push again; one attempt: a late push is worthless.
        await self.ctx.run_typed("push-progress", push, RunOptions(max_attempts=1), status=update)
