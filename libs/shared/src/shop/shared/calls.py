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
    Reservation,
    ReservationResult,
)

Out = TypeVar("Out", bound=BaseModel)


async def _call(
    ctx: Context, service: str, handler: str, arg: BaseModel, out: type[Out], key: str | None = None
) -> Out:
    raw = await ctx.generic_call(service, handler, arg.model_dump_json().encode(), key=key)
    return out.model_validate_json(raw)


async def charge(ctx: Context, request: ChargeRequest) -> Charge:
    return await _call(ctx, names.PAYMENTS, "charge", request, Charge)


async def reserve(ctx: Context, sku: str, request: Reservation) -> ReservationResult:
    return await _call(ctx, names.INVENTORY, "reserve", request, ReservationResult, key=sku)


async def send_email(ctx: Context, request: EmailRequest) -> EmailReceipt:
    return await _call(ctx, names.EMAIL, "send", request, EmailReceipt)
