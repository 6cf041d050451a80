"""Typed calls between services, by Restate name, so no service imports another."""

from typing import TypeVar

from pydantic import BaseModel
from restate import Context

from shop.shared import names
from shop.shared.models import (
    Charge,
    ChargeRequest,
    EmailReceipt,
    EmailRequest,
    OrderRef,
    Refund,
    Reservation,
    ReservationResult,
    StockLevel,
)

Out = TypeVar("Out", bound=BaseModel)


async def _call(
    ctx: Context, service: str, handler: str, arg: BaseModel, out: type[Out], key: str | None = None
) -> Out:
    raw = await ctx.generic_call(service, handler, arg.model_dump_json().encode(), key=key)
    return out.model_validate_json(raw)


async def authorize(ctx: Context, request: ChargeRequest) -> Charge:
    return await _call(ctx, names.PAYMENTS, "authorize", request, Charge)


async def capture(ctx: Context, charge: Charge) -> Charge:
    return await _call(ctx, names.PAYMENTS, "capture", charge, Charge)


async def refund(ctx: Context, charge: Charge) -> Refund:
    return await _call(ctx, names.PAYMENTS, "refund", charge, Refund)


async def reserve(ctx: Context, sku: str, request: Reservation) -> ReservationResult:
    return await _call(ctx, names.INVENTORY, "reserve", request, ReservationResult, key=sku)


async def release(ctx: Context, sku: str, order_id: str) -> StockLevel:
    return await _call(
        ctx, names.INVENTORY, "release", OrderRef(order_id=order_id), StockLevel, key=sku
    )


async def commit(ctx: Context, sku: str, order_id: str) -> StockLevel:
    return await _call(
        ctx, names.INVENTORY, "commit", OrderRef(order_id=order_id), StockLevel, key=sku
    )


async def send_email(ctx: Context, request: EmailRequest) -> EmailReceipt:
    return await _call(ctx, names.EMAIL, "send", request, EmailReceipt)
