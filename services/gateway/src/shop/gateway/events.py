"""The order's progress as a stream: what the client missed, then live events.

A first connection gets the durable snapshot (the workflow's own state); a reconnection
(Last-Event-ID: n) gets the events after n from the Valkey history, or, when Valkey has
none, the durable snapshot. Live events come from the ProgressHub; when none arrive for a
while the durable status is read again, so a lost push (Valkey down) delays an update but
never loses it.
"""

import asyncio
from collections.abc import AsyncIterator

from shop.gateway.progress_hub import ProgressHub
from shop.gateway.restate_ingress import RestateIngress
from shop.shared.models import OrderStatus

POLL_SECONDS = 3.0


async def follow(
    ingress: RestateIngress, hub: ProgressHub, order_id: str, last_seen: int | None
) -> AsyncIterator[OrderStatus]:
    """Yields each status newer than `last_seen` once, in order, ending with the final one."""
    seen = -1 if last_seen is None else last_seen
    with hub.listen(order_id) as queue:
        # Subscribed before anything is read, so no event falls in between.
        snapshot = await ingress.order_status(order_id)
        missed = await hub.history(order_id, seen) if last_seen is not None else []
        for status in [*missed, snapshot]:
            if status.seq > seen:
                seen = status.seq
                yield status
        status = snapshot
        while not status.is_final:
            try:
                status = await asyncio.wait_for(queue.get(), timeout=POLL_SECONDS)
            except TimeoutError:
                status = await ingress.order_status(order_id)
            if status.seq > seen:
                seen = status.seq
                yield status


def nothing_left(snapshot: OrderStatus, last_seen: int | None) -> bool:
    """The client has seen the final event already; a 204 tells EventSource to stop."""
    return snapshot.is_final and last_seen is not None and last_seen >= snapshot.seq


def last_event_id(header: str | None) -> int | None:
    return int(header) if header and header.isdigit() else None


def event_name(status: OrderStatus) -> str:
    return {"completed": "complete", "failed": "failed", "cancelled": "cancelled"}.get(
        status.status, "progress"
    )
