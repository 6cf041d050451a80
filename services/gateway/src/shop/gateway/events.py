"""The order's progress as a stream: what the client missed, then live events.

A first connection gets the durable snapshot (the workflow's own state); a reconnection
(Last-Event-ID: n) gets the events after n from the Valkey history, or, when Valkey has
none, the durable snapshot. Live events come from the ProgressHub. The durable status is
read again when the hub's Valkey connection drops or comes back, every few seconds while it
is down, and after a long silence otherwise (a push the workflow could not make), so a lost
push delays an update but never loses it, without polling Restate for every idle stream.
"""

import asyncio
import random
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Response
from sse_starlette import EventSourceResponse
from starlette.types import Receive, Scope, Send

from shop.gateway.progress_hub import ProgressHub, Queue
from shop.gateway.restate_ingress import RestateIngress, RestateUnavailable
from shop.shared.contracts.fulfilment import OrderStatus
from shop.shared.telemetry import counted_from_zero, sse_connections, sse_events

counted_from_zero(sse_connections)  # none held yet is a value, not a gap
counted_from_zero(sse_events)
POLL_SECONDS_WHILE_VALKEY_DOWN = 3.0
POLL_SECONDS_WHEN_SILENT = 60.0
# Re-reads of the durable status after a pushed final one, until it says final too (~3 s).
CONFIRM_FINAL_PAUSES = (0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


async def follow(
    ingress: RestateIngress, hub: ProgressHub, snapshot: OrderStatus, last_seen: int | None
) -> AsyncIterator[OrderStatus]:
    """Yields each status newer than `last_seen` once, in order, ending with the final one.
    `snapshot` is the durable status, just read (one read per connection, and a few more to
    confirm a pushed final status: with thousands of browsers connecting at once, each read
    is an invocation in Restate)."""
    order_id, seen = snapshot.order_id, -1 if last_seen is None else last_seen

    async def durable_if_final(pushed: OrderStatus) -> OrderStatus | None:
        """What Valkey pushed is a hint: the stream ends only on the durable final status,
        never on a forged or garbled push. The workflow pushes right after it writes its
        state, which Restate may apply a moment later: a few quick re-reads catch up."""
        if not pushed.is_final:
            return pushed
        for pause in CONFIRM_FINAL_PAUSES:
            await asyncio.sleep(pause)
            try:
                status = await ingress.order_status(order_id)
            except RestateUnavailable:  # the stream stays; the next poll tries again
                return None
            if status.is_final:
                return status
        return None

    with hub.listen(order_id) as queue:
        # Subscribed now: what was pushed since the snapshot was read is in the history, as
        # is what a reconnecting client missed. A first connection starts at the snapshot.
        after = seen if last_seen is not None else snapshot.seq
        missed = await hub.history(order_id, after)
        status = snapshot
        for caught_up in sorted([*missed, snapshot], key=lambda s: s.seq):
            if caught_up is not snapshot:
                confirmed = await durable_if_final(caught_up)
                if confirmed is None:
                    break
                caught_up = confirmed
            if caught_up.seq > seen:
                seen, status = caught_up.seq, caught_up
                yield caught_up
        while not status.is_final:
            quiet = POLL_SECONDS_WHEN_SILENT * random.uniform(1, 1.2)  # spread the re-reads
            pushed = await next_update(
                queue, quiet if hub.connected else POLL_SECONDS_WHILE_VALKEY_DOWN
            )
            update: OrderStatus | None
            if pushed is not None:
                update = await durable_if_final(pushed)
            else:
                try:
                    update = await ingress.order_status(order_id)
                except RestateUnavailable:  # the stream stays; the next poll tries again
                    continue
            # A durable final status always ends the stream, even behind a forged push that
            # claimed a later seq.
            if update is not None and (update.seq > seen or update.is_final):
                seen, status = max(seen, update.seq), update
                yield status


async def next_update(queue: Queue, wait: float) -> OrderStatus | None:
    """The next live event; None after `wait` seconds without one, or when the hub says to
    re-read the durable status."""
    try:
        async with asyncio.timeout(wait):  # no task per wait, unlike asyncio.wait_for
            return await queue.get()
    except TimeoutError:
        return None


def seen_event(last_event_id: str | None) -> int | None:
    """The event id the client says it saw; anything but a plain ASCII number (`²` is a
    digit to str.isdigit, not to int) is ignored, as if the header were not there."""
    if last_event_id and re.fullmatch(r"[0-9]{1,18}", last_event_id):
        return int(last_event_id)
    return None


class HeldStream(EventSourceResponse):
    """An SSE response that gives its place back (client_limits) however it ends."""

    media_type = "text/event-stream"  # read by the OpenAPI document, as a route's response_class

    # status_code named with its default, as Starlette's responses do: FastAPI reads it from
    # this signature for the routes' documented success code.
    def __init__(
        self, content: Any, *, release: Callable[[], None], status_code: int = 200, **kwargs: Any
    ) -> None:
        super().__init__(content, status_code=status_code, **kwargs)
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sse_connections.add(1)
        try:
            await super().__call__(scope, receive, send)
        finally:
            sse_connections.add(-1)
            self.release()


async def event_stream(
    ingress: RestateIngress,
    hub: ProgressHub,
    order_id: str,
    last_event_id: str | None,
    render: Callable[[OrderStatus], dict[str, str]],
    ping_seconds: int,
    hold: Callable[[str], Callable[[], None]],
) -> Response:
    """An SSE response of `render(status)` events; 404 for unknown orders, 204 (which tells
    EventSource to stop reconnecting) once the client has seen the final event, and 429 when
    the client, the order or the process holds all the streams it may."""
    last_seen = seen_event(last_event_id)
    snapshot = await ingress.order_status(order_id)
    if snapshot.is_final and last_seen is not None and last_seen >= snapshot.seq:
        return Response(status_code=204)
    release = hold(order_id)

    async def events() -> AsyncIterator[dict[str, str]]:
        async for status in follow(ingress, hub, snapshot, last_seen):
            sse_events.add(1)
            yield {"id": str(status.seq), **render(status)}

    return HeldStream(events(), ping=ping_seconds, release=release)


def event_name(status: OrderStatus) -> str:
    return {"completed": "complete", "failed": "failed", "cancelled": "cancelled"}.get(
        status.status, "progress"
    )
