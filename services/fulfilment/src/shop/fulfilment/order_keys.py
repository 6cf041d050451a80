"""OrderKeys: what a client's Idempotency-Key was used for, one virtual object per key.

Restate runs one handler at a time per key, so two first submissions with one key cannot both
start an order: the second finds the first one's record. The record and the start of the
workflow are journaled together, so a crash between them cannot leave one without the other.
A record outlives its order's workflow (a retry within that time is the same order) and is
then cleared by a delayed message to itself.
"""

import restate
from restate import ObjectContext

from shop.fulfilment.settings import ORDER_RETENTION
from shop.fulfilment.workflow import get_status, run
from shop.shared import names
from shop.shared.contracts.fulfilment import KeyedOrder, KeyedOrderReply

order_keys = restate.VirtualObject(names.ORDER_KEYS)
RECORD = "record"
# Longer than any order's run plus its workflow's retention.
KEY_RETENTION = ORDER_RETENTION * 2


@order_keys.handler()
async def start(ctx: ObjectContext, request: KeyedOrder) -> KeyedOrderReply:
    """Start the order if this key is new; the same request again gets the same order (its
    secret went to the first request only: a key that leaked or was guessed gives nobody the
    right to cancel); another request under this key gets `conflict` and learns nothing."""
    record = await ctx.get(RECORD, type_hint=KeyedOrder)
    if record is None:
        ctx.set(RECORD, request)
        order_id = request.order.order_id
        ctx.workflow_send(run, key=order_id, arg=request.order)
        ctx.object_send(forget, key=ctx.key(), arg=None, send_delay=KEY_RETENTION)
        # A send is only queued; the client may ask for the order's status or cancel it the
        # moment it has the id. Messages to one key arrive in the order they were sent, so
        # once this call is answered the run is known where the gateway looks for it.
        await ctx.workflow_call(get_status, key=order_id, arg=None)
        return KeyedOrderReply(outcome="started", order_id=order_id)
    if record.fingerprint != request.fingerprint:
        return KeyedOrderReply(outcome="conflict")
    return KeyedOrderReply(outcome="replayed", order_id=record.order.order_id)


@order_keys.handler(ingress_private=True)  # only the key's own delayed message
async def forget(ctx: ObjectContext) -> None:
    """The key's retention is over: it may name a new order."""
    ctx.clear_all()
