"""OrderFulfilment: authorize (confirmed with the bank if it asks), reserve, cancellation
window, capture, commit stock, email.

The step order makes the common failures the cheapest to undo:
- a declined card is found by the authorization, before any stock is touched: nothing to undo;
- out of stock is found while the money is only held: undoing it is a void (free, instant)
  and a release of what was reserved, never a refund;
- the customer's cancellation window also runs while the money is only held;
- capture comes once stock is secured; from then on the order is fulfilled.
Each step's undo is registered before the step runs, and on a terminal failure or a cancel
they run in reverse order. Every step is a journaled Restate call, so a crash anywhere resumes
here instead of starting over.
"""

import contextlib
import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

import restate
from restate import RestateDurableFuture, TerminalError, WorkflowContext, WorkflowSharedContext

from shop.fulfilment.progress import STATUS_KEY, Progress
from shop.fulfilment.settings import ORDER_RETENTION, settings
from shop.shared import calls, names
from shop.shared.calls import Reply
from shop.shared.catalog import CATALOG, priced_lines
from shop.shared.contracts.common import money
from shop.shared.contracts.email import EmailKind, EmailRequest
from shop.shared.contracts.fulfilment import (
    CancelOutcome,
    CancelReply,
    CancelRequest,
    FulfilmentResult,
    Order,
    OrderStatus,
    PaymentEvent,
)
from shop.shared.contracts.inventory import Reservation
from shop.shared.contracts.orders import BookOrder
from shop.shared.contracts.payments import Charge, ChargeRequest, Refund
from shop.shared.ownership import secret_matches

fulfilment = restate.Workflow(names.FULFILMENT)
log = restate.getLogger(__name__)  # silent while the workflow replays

# Durable promises: CANCEL is the customer's request; OUTCOME is the run's one decision about
# it (cancelled, or too late because it is fulfilling or failed), which the cancel handler
# waits for, so a cancel racing the capture gets a truthful answer. OWNER holds the digest of
# the order's secret, set by the run before anything else, so the gateway can check a cancel
# even when it comes before the run has reported any progress.
CANCEL, OUTCOME, OWNER = "cancel", "outcome", "owner"
# Resolved (by payment_authenticated) when Stripe says the customer's 3-D Secure check ended.
# A wake while Stripe still waits for the customer (a forged or early event) starts another
# round, with a promise of its own (`payment-auth-1`, ...; the round is in AUTH_ROUND); after
# AUTH_ROUNDS of them, only the deadline ends the wait.
PAYMENT_AUTH, AUTH_ROUND, AUTH_ROUNDS = "payment-auth", "auth-round", 5


def auth_promise(round_: int) -> str:
    return PAYMENT_AUTH if round_ == 0 else f"{PAYMENT_AUTH}-{round_}"


# Where the intent stands after a failed check: open for another card, or voided already.
AUTH_FAILED = frozenset({"requires_payment_method", "canceled"})


class OrderCancelled(TerminalError):
    def __init__(self) -> None:
        super().__init__("cancelled by the customer", status_code=409)


# Read in journaled steps, so a restart with other settings never changes a running order.
# `async`: the SDK runs a plain function in its thread pool, a hop there and back per order.
async def cancel_window() -> float:
    return settings.cancel_window_seconds


async def payment_auth_timeout() -> float:
    return settings.payment_auth_timeout_seconds


def priced(order: Order) -> Order:
    """The order at the catalog's names, prices and currency: whoever starts a run (the run is
    reachable on Restate's ingress) never sets what is charged."""
    unknown = sorted(line.product_id for line in order.lines if line.product_id not in CATALOG)
    if unknown:
        raise TerminalError(f"unknown products {unknown}", status_code=400)
    # A product twice is one line, so one reservation holds all of it.
    lines = priced_lines((line.product_id, line.quantity) for line in order.lines)
    currencies = {CATALOG[line.product_id].currency for line in lines}
    if len(currencies) != 1:
        raise TerminalError("an order is paid in one currency", status_code=400)
    return order.model_copy(update={"lines": lines, "currency": currencies.pop()})


async def book_order(ctx: WorkflowContext, order: Order) -> BookOrder:
    """What the order book keeps of the order. Placed when the gateway took it (a run started
    otherwise takes its time from Restate's journal)."""
    placed_at = order.placed_at or datetime.fromtimestamp(await ctx.time(), UTC)
    return BookOrder(
        customer_email=order.customer_email,
        lines=order.lines,
        currency=order.currency,
        total_cents=order.total_cents,
        fulfilment_version=settings.fulfilment_version,
        placed_at=placed_at,
        trace_id=order.trace_id,
        invocation_id=ctx.request().id,
    )


def duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def received_message() -> str:
    """The same on every replay: an invocation stays on the deployment (the process
    configuration) it started on."""
    version = settings.fulfilment_version
    return "Order received" if version == "v1" else f"Order received (fulfilment {version})"


async def notify(ctx: WorkflowContext, order: Order, kind: EmailKind, reason: str | None) -> str:
    """Emails the customer; a mail that cannot be sent (refused for good, or to an address the
    mail server cannot take) never undoes the order nor keeps it from its final status."""
    request = EmailRequest(
        order_id=order.order_id,
        to=order.customer_email,
        kind=kind,
        lines=order.lines,
        total_cents=order.total_cents,
        currency=order.currency,
        reason=reason,
    )
    try:
        await calls.send_email(ctx, request)
    except TerminalError as e:
        # The SMTP server's words may quote the address: they go to the log, not the status,
        # which anyone with the order's id can read.
        log.warning("email for %s not delivered: %s", order.order_id, e.message)
        return "email could not be sent"
    return "email sent"


async def wait_out_cancel_window(
    ctx: WorkflowContext, seconds: float, cancel_seen: Awaitable[str | None] | None
) -> None:
    """A durable timer (it survives restarts) raced against the customer's cancel. With no
    window, only a cancel that came before the window closed counts: `cancel_seen`, one look
    taken when the stock was asked for (no timer)."""
    if cancel_seen is not None:
        if await cancel_seen is not None:
            raise OrderCancelled()
        return
    match await restate.select(
        window=ctx.sleep(timedelta(seconds=seconds), name="cancel-window"),
        cancel=ctx.promise(CANCEL, type_hint=str).value(),
    ):
        case ["cancel", _]:
            raise OrderCancelled()


async def confirm_with_bank(ctx: WorkflowContext, progress: Progress, charge: Charge) -> Charge:
    """3-D Secure: the customer confirms the payment at their bank (the status's action_url);
    Stripe tells the gateway by webhook, and the gateway resolves PAYMENT_AUTH. That is raced
    against a durable timer and the customer's cancel. Whatever woke the order, Stripe's own
    word on the intent decides, so a forged, late or repeated event cannot move the money, and
    one that comes while the customer is still at the bank only starts another wait."""
    if not charge.action_url:
        raise TerminalError("the bank asks for a confirmation this shop cannot show")
    timeout = await ctx.run_typed("payment-auth-timeout-seconds", payment_auth_timeout)
    await progress(
        "authenticating",
        15,
        "Confirm the payment with your bank",
        cancellable=True,
        action_url=charge.action_url,
    )
    deadline = ctx.sleep(timedelta(seconds=timeout), name="payment-auth-timeout")
    cancel = ctx.promise(CANCEL, type_hint=str).value()
    for round_ in range(AUTH_ROUNDS + 1):
        waits: dict[str, RestateDurableFuture[Any]] = {"timeout": deadline, "cancel": cancel}
        if round_ < AUTH_ROUNDS:  # then only the deadline, when Stripe is asked once more
            if round_:
                ctx.set(AUTH_ROUND, round_)  # where payment_authenticated sends the next event
            waits["confirmed"] = ctx.promise(auth_promise(round_), type_hint=str).value()
        woken_by, _ = await restate.select(**waits)
        if woken_by == "cancel":
            raise OrderCancelled()
        # Asked on a timeout too: a confirmation whose webhook is late still counts.
        charge = await calls.check(ctx, charge)
        if charge.status == "requires_capture":
            return charge
        if woken_by == "timeout":
            raise TerminalError(f"payment not confirmed with the bank within {duration(timeout)}")
        if charge.status in AUTH_FAILED:
            raise TerminalError("payment authentication failed", status_code=402)
        if charge.status != "requires_action":
            break
        log.warning("order %s woken while its bank still waits: waiting again", ctx.key())
    raise TerminalError(f"payment authentication did not complete (payment {charge.status})")


# Kept a week, so order pages and tracking links keep working after the order is done.
@fulfilment.main(workflow_retention=ORDER_RETENTION)
async def run(ctx: WorkflowContext, order: Order) -> FulfilmentResult:
    if ctx.key() != order.order_id:
        raise TerminalError("order_id does not match the workflow key", status_code=400)
    saga, authorized, window = await receive(ctx, priced(order))
    try:
        await saga.hold_and_reserve(authorized, window)
        # Only this run resolves OUTCOME, so it cannot fail: the capture need not wait for
        # Restate's answer; the journal has the decision before the capture either way.
        decided = ctx.promise(OUTCOME, type_hint=str).resolve("fulfilling")
    except TerminalError as e:
        return await saga.unwind(e, decided=False)
    return await saga.fulfil(decided)


async def receive(ctx: WorkflowContext, order: Order) -> tuple["Saga", Reply[Charge], float]:
    """Takes the order: keeps its owner, reports it received and asks for the authorization.
    Steps that do not need each other's answers are sent together and awaited after, so each
    costs no round trip to Restate of its own: the owner's digest, the window's length and the
    authorization (awaited by the saga)."""
    owner_kept = ctx.promise(OWNER, type_hint=str).resolve(order.secret_digest or "")
    window_read = ctx.run_typed("cancel-window-seconds", cancel_window)
    progress = Progress(ctx, order, await book_order(ctx, order))
    await progress("received", 5, received_message(), cancellable=True)
    authorized = calls.authorize(
        ctx,
        ChargeRequest(
            order_id=order.order_id,
            amount_cents=order.total_cents,
            currency=order.currency,
            payment_method=order.payment_method,
            return_url=order.return_url,
        ),
    )
    window = await window_read  # runs while the authorization is on its way
    await owner_kept
    return Saga(ctx, order, progress), authorized, window


Undo = Callable[[], Awaitable[object]]


class Saga:
    """One order's steps and their undos: each undo is registered before its step runs, and
    on a terminal failure or a cancel they run in reverse order (`unwind`)."""

    def __init__(self, ctx: WorkflowContext, order: Order, progress: Progress) -> None:
        self.ctx, self.order, self.progress = ctx, order, progress
        self.undo: list[Undo] = []
        self.total = money(order.total_cents, order.currency)
        # One order, on every replay.
        self.lines = sorted(order.lines, key=lambda line: line.product_id)
        self.charge: Charge | None = None  # the payment as it last stood

    async def hold_and_reserve(self, authorized: Reply[Charge], window: float) -> None:
        """The money held (confirmed with the bank if it asks), every line's stock reserved,
        then the customer's cancellation window: all undone for free, nothing charged yet."""
        ctx, order, progress = self.ctx, self.order, self.progress
        self.charge = await authorized
        self.undo.append(self.refund)
        if self.charge.status == "requires_action":
            self.charge = await confirm_with_bank(ctx, progress, self.charge)
        await progress("authorized", 25, f"{self.total} held on your card", cancellable=True)
        # Every line at once (one SKU object each); a line's release is queued behind its
        # reserve on that SKU, so undoing a line whose reserve is still running is safe.
        reservations = []
        for line in self.lines:
            sku = line.product_id
            self.undo.append(functools.partial(calls.release, ctx, sku, order.order_id))
            reservation = Reservation(order_id=order.order_id, quantity=line.quantity)
            reservations.append(calls.reserve(ctx, sku, reservation))
        cancel_seen = ctx.promise(CANCEL, type_hint=str).peek() if window <= 0 else None
        for reserved in reservations:
            await reserved
        message = f"Stock reserved; you can cancel for {window:g}s"
        await progress("reserved", 45, message, cancellable=True)
        await wait_out_cancel_window(ctx, window, cancel_seen)

    def refund(self) -> Reply[Refund]:
        """The payment as it stands when undone: voids an intent not captured yet."""
        assert self.charge is not None  # registered once the authorization answered
        return calls.refund(self.ctx, self.charge)

    async def fulfil(self, decided: Awaitable[None]) -> FulfilmentResult:
        """Capture, then the stock leaves the shelf and the confirmation is mailed. A refused
        capture (e.g. the hold expired) gives everything back."""
        ctx, order, progress = self.ctx, self.order, self.progress
        assert self.charge is not None  # held by hold_and_reserve
        await progress("capturing", 55, "Capturing the payment")
        try:
            self.charge = await calls.capture(ctx, self.charge)
        except TerminalError as e:
            return await self.unwind(e, decided=True)
        await decided
        await progress("charged", 70, f"{self.total} charged")
        # Neither waits for the other.
        commits = [calls.commit(ctx, line.product_id, order.order_id) for line in self.lines]
        mailed = await notify(ctx, order, "confirmation", None)
        for committed in commits:
            await committed
        result = FulfilmentResult(
            order_id=order.order_id,
            status="completed",
            payment_intent_id=self.charge.payment_intent_id,
        )
        message = f"Order complete; confirmation {mailed}"
        await progress("completed", 100, message, "completed", result)
        return result

    async def unwind(self, error: TerminalError, decided: bool) -> FulfilmentResult:
        """The undos in reverse order, then the customer told (a failure's mail within its
        address's quota) and the final status reported."""
        ctx, order, progress = self.ctx, self.order, self.progress
        cancelled = isinstance(error, OrderCancelled)
        status: Literal["cancelled", "failed"] = "cancelled" if cancelled else "failed"
        if not decided:
            await ctx.promise(OUTCOME, type_hint=str).resolve(status)
        for step in reversed(self.undo):
            await step()
        mailed = "email not sent: this address had enough of them lately"
        if status != "failed" or await may_mail_failure(ctx, order):
            mailed = await notify(ctx, order, status, error.message)
        result = FulfilmentResult(
            order_id=order.order_id, status=status, reason=error.message, last_step=progress.step
        )
        title = "Order cancelled" if status == "cancelled" else "Order failed"
        await progress(status, 100, f"{title}; {mailed}", status, result)
        return result


async def may_mail_failure(ctx: WorkflowContext, order: Order) -> bool:
    """A failed order's mail counts against its address's hourly share (a declined card costs
    nothing to try, so without one anybody could have the shop mail anyone without end)."""
    quota = await calls.take_mail_quota(ctx, order.customer_email, order.order_id)
    return quota.allowed


@fulfilment.handler()
async def get_status(ctx: WorkflowSharedContext) -> OrderStatus:
    """The order's latest progress; status `pending` with seq 0 before the run reports any."""
    status = await ctx.get(STATUS_KEY, type_hint=OrderStatus)
    return status or OrderStatus(
        order_id=ctx.key(),
        status="pending",
        step="pending",
        percent=0,
        message="Queued",
        seq=0,
        cancellable=True,
    )


@fulfilment.handler()
async def payment_authenticated(ctx: WorkflowSharedContext, event: PaymentEvent) -> None:
    """Stripe says the customer's bank check ended (the gateway verified the webhook): wakes the
    run. Harmless when nothing waits: only an order waiting at that step is touched (not a key
    without a run, nor the many orders whose card needed no check, nor a finished one), and its
    promise is resolved once (a duplicate or late event changes nothing). The customer learns
    where to confirm only from that step's status, so no event can come before it."""
    status = await ctx.get(STATUS_KEY, type_hint=OrderStatus)
    if status is None or status.step != "authenticating":
        return
    round_ = await ctx.get(AUTH_ROUND, type_hint=int) or 0
    with contextlib.suppress(TerminalError):  # resolved before: the first event stands
        await ctx.promise(auth_promise(round_), type_hint=str).resolve(event.type)


async def owner_digest(ctx: WorkflowSharedContext) -> str:
    """The digest of the order's secret ("" if it has none). Waits for the run to record it
    when the run has not started yet; callers check first that the order exists."""
    digest = await ctx.promise(OWNER, type_hint=str).peek()
    if digest is None and await ctx.get(STATUS_KEY, type_hint=OrderStatus) is not None:
        return ""  # placed before orders had secrets: only an operator may change it
    if digest is None:
        digest = await ctx.promise(OWNER, type_hint=str).value()
    return digest


@fulfilment.handler(ingress_private=True)
async def owner(ctx: WorkflowSharedContext) -> str:
    """The digest of the order's secret, for other services only."""
    return await owner_digest(ctx)


async def may_cancel(secret: str, digest: str) -> bool:
    return secret_matches(secret, digest) or settings.is_operator(secret)


@fulfilment.handler()
async def cancel_with_secret(ctx: WorkflowSharedContext, request: CancelRequest) -> CancelReply:
    """The customer's cancel (with the order's secret) or an operator's (with ADMIN_TOKEN),
    checked here as well as at the gateway; anything else is `refused` and changes nothing.
    The check is journaled, so a replay takes the same path whatever the settings are now."""
    digest = await owner_digest(ctx)
    if not await ctx.run_typed("may-cancel", may_cancel, secret=request.secret, digest=digest):
        return CancelReply(order_id=ctx.key(), outcome="refused")
    return await cancel_run(ctx)


@fulfilment.handler(ingress_private=True)
async def cancel(ctx: WorkflowSharedContext) -> CancelReply:
    """Cancel without a check, for other services only."""
    return await cancel_run(ctx)


async def cancel_run(ctx: WorkflowSharedContext) -> CancelReply:
    """Ask the run to cancel, and wait for its answer: cancelled, or too late."""
    outcome = await ctx.promise(OUTCOME, type_hint=str).peek()
    if outcome is None:
        with contextlib.suppress(TerminalError):  # asked before: the first request stands
            await ctx.promise(CANCEL, type_hint=str).resolve("requested")
        outcome = await ctx.promise(OUTCOME, type_hint=str).value()
    if outcome == "fulfilling":  # decided before the capture, which may have been refused
        status = await ctx.get(STATUS_KEY, type_hint=OrderStatus)
        if status is not None and status.status == "failed":
            outcome = "failed"
    # Only the run resolves OUTCOME, and always with a CancelOutcome.
    return CancelReply(order_id=ctx.key(), outcome=cast(CancelOutcome, outcome))
