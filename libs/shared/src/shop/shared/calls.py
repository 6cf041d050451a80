"""Typed calls between services, by Restate name, so no service imports another.

Each helper sends its call at once and returns a Reply to await: calls made one after another
before any is awaited run concurrently, in the order they were made (deterministic on replay).
"""

from collections.abc import Awaitable, Generator
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from restate import Context

from shop.shared import names
from shop.shared.contracts.common import OrderRef
from shop.shared.contracts.email import EmailReceipt, EmailRequest, MailAllowance
from shop.shared.contracts.inventory import ItemsBack, Reservation, ReservationResult, StockLevel
from shop.shared.contracts.orders import BookEntry
from shop.shared.contracts.payments import (
    Charge,
    ChargeRequest,
    IntentPage,
    IntentQuery,
    IntentRef,
    Refund,
    RefundCharge,
    StripeIntent,
    StripeRefund,
)
from shop.shared.ownership import sha256

Out = TypeVar("Out", bound=BaseModel)


class Reply(Generic[Out]):
    """A call already sent through Restate; awaiting it gives the typed answer."""

    def __init__(self, raw: Awaitable[bytes], out: type[Out]) -> None:
        self.raw, self.out = raw, out

    def __await__(self) -> Generator[Any, None, Out]:
        return self._parse().__await__()

    async def _parse(self) -> Out:
        return self.out.model_validate_json(await self.raw)


def _call(
    ctx: Context, service: str, handler: str, arg: BaseModel, out: type[Out], key: str | None = None
) -> Reply[Out]:
    raw = ctx.generic_call(service, handler, arg.model_dump_json().encode(), key=key)
    return Reply(raw, out)


def authorize(ctx: Context, request: ChargeRequest) -> Reply[Charge]:
    return _call(ctx, names.PAYMENTS, "authorize", request, Charge)


def capture(ctx: Context, charge: Charge) -> Reply[Charge]:
    return _call(ctx, names.PAYMENTS, "capture", charge, Charge)


def check(ctx: Context, charge: Charge) -> Reply[Charge]:
    """The PaymentIntent as Stripe has it now."""
    return _call(ctx, names.PAYMENTS, "check", charge, Charge)


def refund(ctx: Context, charge: Charge) -> Reply[Refund]:
    return _call(ctx, names.PAYMENTS, "refund", charge, Refund)


def refund_part(ctx: Context, charge: RefundCharge) -> Reply[StripeRefund]:
    """Give back part (or all) of a captured payment: one Stripe refund per refund id."""
    return _call(ctx, names.PAYMENTS, "refund_part", charge, StripeRefund)


def list_intents(ctx: Context, query: IntentQuery) -> Reply[IntentPage]:
    """A page of Stripe's PaymentIntents created in a window, with their money."""
    return _call(ctx, names.PAYMENTS, "list_intents", query, IntentPage)


def intent(ctx: Context, ref: IntentRef) -> Reply[StripeIntent]:
    return _call(ctx, names.PAYMENTS, "intent", ref, StripeIntent)


def reserve(ctx: Context, sku: str, request: Reservation) -> Reply[ReservationResult]:
    return _call(ctx, names.INVENTORY, "reserve", request, ReservationResult, key=sku)


def release(ctx: Context, sku: str, order_id: str) -> Reply[StockLevel]:
    return _call(ctx, names.INVENTORY, "release", OrderRef(order_id=order_id), StockLevel, key=sku)


def commit(ctx: Context, sku: str, order_id: str) -> Reply[StockLevel]:
    return _call(ctx, names.INVENTORY, "commit", OrderRef(order_id=order_id), StockLevel, key=sku)


def put_back(ctx: Context, sku: str, items: ItemsBack) -> Reply[StockLevel]:
    """A refunded order's items of one SKU go back on the shelf (sold to available)."""
    return _call(ctx, names.INVENTORY, "put_back", items, StockLevel, key=sku)


def send_email(ctx: Context, request: EmailRequest) -> Reply[EmailReceipt]:
    return _call(ctx, names.EMAIL, "send", request, EmailReceipt)


def take_mail_quota(ctx: Context, address: str, order_id: str) -> Reply[MailAllowance]:
    """One of the address's failure mails for the hour (keyed by the address's digest, so no
    address is a key in Restate's UI)."""
    key = sha256(address.strip().lower())
    return _call(ctx, names.MAIL_QUOTA, "take", OrderRef(order_id=order_id), MailAllowance, key=key)


def record(ctx: Context, entry: BookEntry) -> None:
    """Into the order book, one-way (nothing to await): one writer per order, in order."""
    ctx.generic_send(names.ORDERS, "record", entry.model_dump_json().encode(), key=entry.order_id)
