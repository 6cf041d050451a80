"""Inventory: one Virtual Object per SKU, so Restate runs one stock change at a time per SKU
and two orders can never oversell it.

State per SKU, one entry (`shelf`) so that each change is one journal entry, not four:
- `available`: absent until the first change, meaning the catalog's opening stock, so a
  restart never resets stock that has changed;
- `reservations`: quantity held per order, so a retried `reserve` never takes stock twice
  and `release` / `commit` know what to give back or sell;
- `sold` and `stocked`: what left with completed orders, and everything ever put on the
  shelf. Conserved at every step: stocked == available + reserved + sold.
Stock kept by an earlier version under one key per field is read once and moved over.

Only the workflow reserves, releases and commits (private to Restate's ingress); setting
stock takes the operators' token; reading it is public.
"""

import restate
from pydantic import BaseModel
from restate import ObjectContext, ObjectSharedContext, TerminalError

from shop.inventory.settings import settings
from shop.shared import names
from shop.shared.catalog import CATALOG
from shop.shared.contracts.common import OrderRef
from shop.shared.contracts.inventory import (
    ItemsBack,
    Reservation,
    ReservationResult,
    Restock,
    StockLevel,
)
from shop.shared.telemetry import step

inventory = restate.VirtualObject(names.INVENTORY)


def known_sku(sku: str) -> str:
    if sku not in CATALOG:
        raise TerminalError(f"unknown product {sku!r}", status_code=404)
    return sku


class Shelf(BaseModel):
    available: int
    sold: int = 0
    stocked: int
    reservations: dict[str, int] = {}


SHELF = "shelf"
OLD_KEYS = ("available", "reservations", "sold", "stocked")


async def level(ctx: ObjectContext | ObjectSharedContext) -> tuple[StockLevel, dict[str, int]]:
    sku = known_sku(ctx.key())
    shelf = await ctx.get(SHELF, type_hint=Shelf) or await old_shelf(ctx, sku)
    stock = StockLevel(
        sku=sku,
        available=shelf.available,
        reserved=sum(shelf.reservations.values()),
        sold=shelf.sold,
        stocked=shelf.stocked,
    )
    return stock, shelf.reservations


async def old_shelf(ctx: ObjectContext | ObjectSharedContext, sku: str) -> Shelf:
    """The SKU's stock as the first version kept it (one key per field), or the catalog's
    opening stock when it has never changed."""
    opening = CATALOG[sku].initial_stock
    available = await ctx.get("available", type_hint=int)
    stocked = await ctx.get("stocked", type_hint=int)
    return Shelf(
        available=opening if available is None else available,
        sold=await ctx.get("sold", type_hint=int) or 0,
        stocked=opening if stocked is None else stocked,
        reservations=await ctx.get("reservations", type_hint=dict[str, int]) or {},
    )


def save(ctx: ObjectContext, stock: StockLevel, held: dict[str, int]) -> None:
    shelf = Shelf(
        available=stock.available, sold=stock.sold, stocked=stock.stocked, reservations=held
    )
    ctx.set(SHELF, shelf)


@inventory.handler(ingress_private=True)
async def reserve(ctx: ObjectContext, request: Reservation) -> ReservationResult:
    with step("inventory reserve", request.order_id, **{"shop.sku": ctx.key()}):
        return await take(ctx, request)


async def take(ctx: ObjectContext, request: Reservation) -> ReservationResult:
    stock, held = await level(ctx)
    if request.order_id not in held:
        if stock.available < request.quantity:
            raise TerminalError(
                f"out of stock: {stock.sku} has {stock.available} left, "
                f"the order needs {request.quantity}",
                status_code=409,
            )
        held[request.order_id] = request.quantity
        stock.available -= request.quantity
        stock.reserved += request.quantity
        save(ctx, stock, held)
    return ReservationResult(
        sku=stock.sku,
        order_id=request.order_id,
        quantity=held[request.order_id],
        available=stock.available,
    )


async def settle(ctx: ObjectContext, ref: OrderRef, sold: bool) -> StockLevel:
    """Ends an order's reservation: sold, or back on the shelf. No-op if it holds none."""
    with step(
        "inventory " + ("commit" if sold else "release"), ref.order_id, **{"shop.sku": ctx.key()}
    ):
        return await move(ctx, ref, sold)


async def move(ctx: ObjectContext, ref: OrderRef, sold: bool) -> StockLevel:
    stock, held = await level(ctx)
    quantity = held.pop(ref.order_id, 0)
    if quantity:
        stock.reserved -= quantity
        if sold:
            stock.sold += quantity
        else:
            stock.available += quantity
        save(ctx, stock, held)
    return stock


@inventory.handler(ingress_private=True)
async def release(ctx: ObjectContext, ref: OrderRef) -> StockLevel:
    """The order failed or was cancelled: its reservation goes back on the shelf."""
    return await settle(ctx, ref, sold=False)


@inventory.handler(ingress_private=True)
async def commit(ctx: ObjectContext, ref: OrderRef) -> StockLevel:
    """The order is paid: its reservation becomes sold."""
    return await settle(ctx, ref, sold=True)


@inventory.handler(ingress_private=True)
async def put_back(ctx: ObjectContext, items: ItemsBack) -> StockLevel:
    """A refunded order's items are back: sold again becomes available (never more than was
    sold). Once per refund: the refund's journaled call is what keeps it from repeating."""
    with step("inventory put back", items.order_id, **{"shop.sku": ctx.key()}):
        stock, held = await level(ctx)
        quantity = min(items.quantity, stock.sold)
        if quantity:
            stock.sold -= quantity
            stock.available += quantity
            save(ctx, stock, held)
        return stock


async def is_operator(token: str) -> bool:
    return settings.is_operator(token)


@inventory.handler()
async def restock(ctx: ObjectContext, update: Restock) -> StockLevel:
    """Set the stock available to sell (an operator's count); `stocked` follows it. Only
    with the operators' ADMIN_TOKEN, checked here as well as at the gateway (journaled, so a
    replay takes the same path whatever the settings are now)."""
    if not await ctx.run_typed("is-operator", is_operator, token=update.operator_token):
        raise TerminalError("setting stock takes the operators' ADMIN_TOKEN", status_code=403)
    stock, held = await level(ctx)
    stock.stocked += update.quantity - stock.available
    stock.available = update.quantity
    save(ctx, stock, held)
    return stock


@inventory.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> StockLevel:
    stock, _ = await level(ctx)
    return stock
