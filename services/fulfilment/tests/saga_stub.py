"""Every service the OrderFulfilment workflow calls, as one stub process: Payments, Inventory,
Email, MailQuota and the order book's Orders, under their real Restate names and handler names,
taking and answering the real contract models, so the workflow cannot tell it from the real
services. It answers as each order's script says (declined, out of stock, capture refused,
transient errors first, a bounce, a bank that never answers...) and records every attempt at
every handler, in the order they arrive.

`SagaStub` (public on the ingress) is how a test drives it: `script` sets an order's script
before the order starts (or changes it while it runs: the bank confirms), `calls` reads what
the order's workflow called. Served and registered exactly like the shop's services
(`shop.shared.serve.run`):

    PORT=9191 RESTATE_ADMIN_URL=... python services/fulfilment/tests/saga_stub.py
"""

from collections import Counter
from datetime import timedelta
from typing import Literal

import restate
from pydantic import BaseModel
from restate import Context, ObjectContext, TerminalError
from restate.retry_policy import InvocationRetryPolicy

from shop.shared import names
from shop.shared.contracts.common import OrderRef
from shop.shared.contracts.email import EmailReceipt, EmailRequest, MailAllowance
from shop.shared.contracts.inventory import Reservation, ReservationResult, StockLevel
from shop.shared.contracts.orders import BookEntry
from shop.shared.contracts.payments import Charge, ChargeRequest, Refund
from shop.shared.serve import run
from shop.shared.settings import ServiceSettings

# What the real services answer in these cases (shop.payments.handlers, shop.email.handlers).
DECLINED = "payment declined: Your card was declined."
CAPTURE_REFUSED = (
    "capture refused: This PaymentIntent could not be captured because it has a status of canceled."
)
BOUNCED = "mail refused: 550 5.1.1 <{to}>: no such user"


class Script(BaseModel):
    """How the stub answers one order. The defaults: everything goes through."""

    authorize: Literal["ok", "declined", "3ds"] = "ok"  # 3ds: requires_action, with a bank URL
    check: str = "requires_capture"  # the intent's status as Payments/check reports it
    out_of_stock: list[str] = []  # SKUs whose reserve is refused
    capture: Literal["ok", "refused"] = "ok"
    email: Literal["ok", "bounce"] = "ok"  # bounce: refused for good (a terminal error)
    mail_quota: bool = True  # whether MailQuota allows a failure mail
    # "Service/handler" -> N: its first N attempts (per key) fail with a retryable error.
    transient: dict[str, int] = {}


class ScriptFor(BaseModel):
    order_id: str
    script: Script


class Call(BaseModel):
    """One attempt at one handler, as it arrived."""

    service: str
    handler: str
    key: str | None = None
    invocation_id: str
    outcome: Literal["ok", "error", "terminal"] = "ok"  # error: retried by Restate
    detail: str = ""  # what matters of the input or the answer (a quantity, a mail's kind...)
    reason: str | None = None  # a mail's reason

    @property
    def target(self) -> str:
        return "/".join(p for p in (self.service, self.key, self.handler) if p)


class CallLog(BaseModel):
    calls: list[Call]


SCRIPTS: dict[str, Script] = {}
CALLS: dict[str, list[Call]] = {}  # order id -> its calls, in order of arrival
ATTEMPTS: Counter[tuple[str, str]] = Counter()  # (order id, target) -> attempts
CAPTURED: set[str] = set()  # orders whose payment was captured

# Retried quickly: the transient errors are the stub's own, scripted.
FAST_RETRIES = InvocationRetryPolicy(
    initial_interval=timedelta(milliseconds=50),
    exponentiation_factor=1,
    max_interval=timedelta(milliseconds=50),
    max_attempts=20,
    on_max_attempts="kill",
)


def arrived(
    ctx: Context,
    service: str,
    handler: str,
    order_id: str,
    key: str | None = None,
    detail: str = "",
    reason: str | None = None,
) -> tuple[Script, Call]:
    """Records the attempt and fails it if the script wants one more transient error."""
    call = Call(
        service=service,
        handler=handler,
        key=key,
        invocation_id=ctx.request().id,
        detail=detail,
        reason=reason,
    )
    CALLS.setdefault(order_id, []).append(call)
    script = SCRIPTS.get(order_id, Script())
    ATTEMPTS[(order_id, call.target)] += 1
    if ATTEMPTS[(order_id, call.target)] <= script.transient.get(f"{service}/{handler}", 0):
        call.outcome = "error"
        raise RuntimeError(f"stub: transient failure of {call.target}")  # Restate retries
    return script, call


def refused(call: Call, message: str, status_code: int) -> TerminalError:
    call.outcome = "terminal"
    return TerminalError(message, status_code=status_code)


def intent_of(order_id: str) -> str:
    return f"pi_stub_{order_id}"


payments = restate.Service(
    names.PAYMENTS, ingress_private=True, invocation_retry_policy=FAST_RETRIES
)


@payments.handler()
async def authorize(ctx: Context, request: ChargeRequest) -> Charge:
    detail = f"{request.amount_cents} {request.currency}"
    script, call = arrived(ctx, names.PAYMENTS, "authorize", request.order_id, detail=detail)
    if script.authorize == "declined":
        raise refused(call, DECLINED, 402)
    bank = script.authorize == "3ds"
    return Charge(
        order_id=request.order_id,
        payment_intent_id=intent_of(request.order_id),
        amount_cents=request.amount_cents,
        status="requires_action" if bank else "requires_capture",
        action_url=f"https://bank.example/3ds/{intent_of(request.order_id)}" if bank else None,
    )


@payments.handler()
async def check(ctx: Context, charge: Charge) -> Charge:
    script, call = arrived(ctx, names.PAYMENTS, "check", charge.order_id)
    call.detail = script.check
    action_url = charge.action_url if script.check == "requires_action" else None
    return charge.model_copy(update={"status": script.check, "action_url": action_url})


@payments.handler()
async def capture(ctx: Context, charge: Charge) -> Charge:
    script, call = arrived(ctx, names.PAYMENTS, "capture", charge.order_id)
    if script.capture == "refused":
        raise refused(call, CAPTURE_REFUSED, 400)
    CAPTURED.add(charge.order_id)
    return charge.model_copy(update={"status": "succeeded", "action_url": None})


@payments.handler()
async def refund(ctx: Context, charge: Charge) -> Refund:
    """Voids a hold, refunds a capture (as the real one decides by the intent's status)."""
    _, call = arrived(ctx, names.PAYMENTS, "refund", charge.order_id)
    action: Literal["refunded", "voided"] = "refunded" if charge.order_id in CAPTURED else "voided"
    call.detail = action
    return Refund(
        order_id=charge.order_id, payment_intent_id=charge.payment_intent_id, action=action
    )


inventory = restate.VirtualObject(names.INVENTORY, invocation_retry_policy=FAST_RETRIES)


def level(sku: str) -> StockLevel:
    return StockLevel(sku=sku, available=100, reserved=0, sold=0, stocked=100)


@inventory.handler(ingress_private=True)
async def reserve(ctx: ObjectContext, request: Reservation) -> ReservationResult:
    sku, order_id = ctx.key(), request.order_id
    detail = str(request.quantity)
    script, call = arrived(ctx, names.INVENTORY, "reserve", order_id, sku, detail=detail)
    if sku in script.out_of_stock:
        message = f"out of stock: {sku} has 0 left, the order needs {request.quantity}"
        raise refused(call, message, 409)
    return ReservationResult(sku=sku, order_id=order_id, quantity=request.quantity, available=100)


@inventory.handler(ingress_private=True)
async def release(ctx: ObjectContext, ref: OrderRef) -> StockLevel:
    arrived(ctx, names.INVENTORY, "release", ref.order_id, ctx.key())
    return level(ctx.key())


@inventory.handler(ingress_private=True)
async def commit(ctx: ObjectContext, ref: OrderRef) -> StockLevel:
    arrived(ctx, names.INVENTORY, "commit", ref.order_id, ctx.key())
    return level(ctx.key())


email = restate.Service(names.EMAIL, ingress_private=True, invocation_retry_policy=FAST_RETRIES)


@email.handler()
async def send(ctx: Context, request: EmailRequest) -> EmailReceipt:
    script, call = arrived(
        ctx, names.EMAIL, "send", request.order_id, detail=request.kind, reason=request.reason
    )
    if script.email == "bounce":
        raise refused(call, BOUNCED.format(to=request.to), 422)
    return EmailReceipt(message_id=f"<{request.order_id}.{request.kind}@stub.example>")


mail_quota = restate.VirtualObject(
    names.MAIL_QUOTA, ingress_private=True, invocation_retry_policy=FAST_RETRIES
)


@mail_quota.handler()
async def take(ctx: ObjectContext, ref: OrderRef) -> MailAllowance:
    script, call = arrived(ctx, names.MAIL_QUOTA, "take", ref.order_id, ctx.key())
    call.detail = "allowed" if script.mail_quota else "refused"
    return MailAllowance(allowed=script.mail_quota)


orders = restate.VirtualObject(names.ORDERS, invocation_retry_policy=FAST_RETRIES)


@orders.handler(ingress_private=True)
async def record(ctx: ObjectContext, entry: BookEntry) -> None:
    detail = f"{entry.seq} {entry.status} {entry.step}"
    arrived(ctx, names.ORDERS, "record", entry.order_id, ctx.key(), detail=detail)


control = restate.Service("SagaStub")


@control.handler()
async def script(ctx: Context, request: ScriptFor) -> None:
    SCRIPTS[request.order_id] = request.script


@control.handler()
async def calls(ctx: Context, ref: OrderRef) -> CallLog:
    return CallLog(calls=CALLS.get(ref.order_id, []))


class StubSettings(ServiceSettings):
    port: int = 9191


SERVICES: list[restate.Service | restate.VirtualObject] = [
    payments,
    inventory,
    email,
    mail_quota,
    orders,
    control,
]

if __name__ == "__main__":
    run("saga-stub", SERVICES, StubSettings())
