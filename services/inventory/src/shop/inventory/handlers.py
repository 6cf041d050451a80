"""Inventory: one Virtual Object per SKU, so Restate runs one stock change at a time per SKU.

State per SKU: `available` (absent until the first change, meaning the catalog's opening
stock, so a restart never resets stock that has changed) and `reservations`, the quantity
held per order, which makes a retried or replayed `reserve` a no-op rather than a second take.
"""

import restate
from restate import ObjectContext, ObjectSharedContext, TerminalError

from shop.shared import names
from shop.shared.catalog import CATALOG
from shop.shared.models import Reservation, ReservationResult, StockLevel, StockUpdate

inventory = restate.VirtualObject(names.INVENTORY)


def known_sku(sku: str) -> str:
    if sku not in CATALOG:
        raise TerminalError(f"unknown product {sku!r}", status_code=404)
    return sku


async def available(ctx: ObjectContext | ObjectSharedContext) -> int:
    stored = await ctx.get("available", type_hint=int)
    return CATALOG[ctx.key()].initial_stock if stored is None else stored


async def reservations(ctx: ObjectContext | ObjectSharedContext) -> dict[str, int]:
    return await ctx.get("reservations", type_hint=dict[str, int]) or {}


@inventory.handler()
async def reserve(ctx: ObjectContext, request: Reservation) -> ReservationResult:
    sku = known_sku(ctx.key())
    held = await reservations(ctx)
    stock = await available(ctx)
    if request.order_id not in held:
        if stock < request.quantity:
            raise TerminalError(
                f"out of stock: {sku} has {stock} left, the order needs {request.quantity}",
                status_code=409,
            )
        stock -= request.quantity
        held[request.order_id] = request.quantity
        ctx.set("available", stock)
        ctx.set("reservations", held)
    return ReservationResult(
        sku=sku, order_id=request.order_id, quantity=held[request.order_id], available=stock
    )


@inventory.handler()
async def restock(ctx: ObjectContext, update: StockUpdate) -> StockLevel:
    """Set the stock that is available to sell (an operator's count)."""
    sku = known_sku(ctx.key())
    ctx.set("available", update.quantity)
    return StockLevel(
        sku=sku, available=update.quantity, reserved=sum((await reservations(ctx)).values())
    )


@inventory.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> StockLevel:
    sku = known_sku(ctx.key())
    held = await reservations(ctx)
    return StockLevel(sku=sku, available=await available(ctx), reserved=sum(held.values()))
