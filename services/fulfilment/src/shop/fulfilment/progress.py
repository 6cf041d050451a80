"""Progress reporting: durable workflow state first (authoritative), then a best-effort push
to Valkey for live updates, which can never fail or stall the workflow."""

import asyncio
import logging
from functools import cache

import redis.asyncio as redis
from restate import RunOptions, WorkflowContext

from shop.fulfilment.settings import settings
from shop.shared import names
from shop.shared.models import OrderStatus

log = logging.getLogger(__name__)
STATUS_KEY = "status"


@cache
def valkey() -> redis.Redis:
    timeout = settings.progress_push_timeout_seconds
    return redis.Redis.from_url(
        settings.valkey_url, socket_timeout=timeout, socket_connect_timeout=timeout
    )


async def push(status: OrderStatus) -> bool:
    try:
        async with asyncio.timeout(settings.progress_push_timeout_seconds):
            await valkey().publish(names.PROGRESS_CHANNEL, status.model_dump_json())
        return True
    except Exception as e:  # best effort by design: the durable state already holds it
        log.warning("progress push for %s failed: %s", status.order_id, e)
        return False


async def report(ctx: WorkflowContext, status: OrderStatus) -> None:
    ctx.set(STATUS_KEY, status)
    # Journaled, so a replay does not push again; one attempt, since a late push is worthless.
    await ctx.run_typed("push-progress", push, RunOptions(max_attempts=1), status=status)
