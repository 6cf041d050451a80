"""The skeleton order: the shop's order call graph with every side effect replaced by nothing.

The workflow is the shop's own `OrderFulfilment` code (shop.fulfilment.workflow), run under
other names (`Skeleton...`) so that it sits beside the shop on the same Restate server: the
same steps in the same order and parallelism, the same journal entries, state writes,
one-way sends to the book and progress writes. What it calls answers at once, with the shape
of journal the real handler leaves (Payments and Email: one `ctx.run`; Inventory: its shelf
read and written; Orders/record: nothing), and nothing is pushed to Valkey. No Stripe, SMTP,
Valkey or PostgreSQL: what is left is what the call graph itself costs (Restate, HTTP/2, the
SDK, the workflow's own code).

Each part runs as a process of its own, as the shop's services do (five processes, spread
over the cores the same way):

    python bench/skeleton.py fulfilment|payments|inventory|email|orders    (PORT, Restate env)

`tests/bench/test_skeleton.py` keeps it in step: a happy-path order's journals, shop and
skeleton, must have the same shape.
"""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import restate
from restate import Context, ObjectContext, RunOptions

from shop.shared import names

if TYPE_CHECKING:
    from shop.dev.stack import Stack
    from shop.shared.serve import RestateService

PREFIX = "Skeleton"
RENAMED = ("FULFILMENT", "PAYMENTS", "INVENTORY", "EMAIL", "ORDERS")
ROLES = ("fulfilment", "payments", "inventory", "email", "orders")
# The services' Restate names, as the skeleton's parts register them.
SERVICES = [PREFIX + getattr(names, name) for name in RENAMED]


def rename() -> None:
    """The shop's service names, prefixed: before the workflow's module is imported (it names
    its Workflow then), and read by shop.shared.calls at each call."""
    for name in RENAMED:
        value = getattr(names, name)
        if not value.startswith(PREFIX):
            setattr(names, name, PREFIX + value)


def fulfilment() -> "list[RestateService]":
    from shop.fulfilment import progress, workflow

    async def no_push(status: Any, at: float) -> bool:
        return True  # the live progress push (Valkey) is a side effect: left out

    progress.publish = no_push  # the one side effect in-process
    return [workflow.fulfilment]


def payments() -> "list[RestateService]":
    from shop.shared.contracts.payments import Charge, ChargeRequest

    service = restate.Service(names.PAYMENTS)

    def held(request: ChargeRequest) -> Charge:
        return Charge(
            order_id=request.order_id,
            payment_intent_id=f"pi_skeleton_{request.order_id}",
            amount_cents=request.amount_cents,
            status="requires_capture",
        )

    def captured(charge: Charge) -> Charge:
        return charge.model_copy(update={"status": "succeeded"})

    @service.handler()
    async def authorize(ctx: Context, request: ChargeRequest) -> Charge:
        return await ctx.run_typed("stripe-authorize", held, RunOptions(), request=request)

    @service.handler()
    async def capture(ctx: Context, charge: Charge) -> Charge:
        return await ctx.run_typed("stripe-capture", captured, RunOptions(), charge=charge)

    return [service]


def inventory() -> "list[RestateService]":
    from shop.shared.contracts.common import OrderRef
    from shop.shared.contracts.inventory import Reservation, ReservationResult, StockLevel

    service = restate.VirtualObject(names.INVENTORY)
    shelf_key = "shelf"  # one state entry, read and written, as the real shelf

    @service.handler(ingress_private=True)
    async def reserve(ctx: ObjectContext, request: Reservation) -> ReservationResult:
        held = await ctx.get(shelf_key, type_hint=dict[str, int]) or {}
        held[request.order_id] = request.quantity
        ctx.set(shelf_key, held)
        return ReservationResult(
            sku=ctx.key(), order_id=request.order_id, quantity=request.quantity, available=1
        )

    @service.handler(ingress_private=True)
    async def commit(ctx: ObjectContext, ref: OrderRef) -> StockLevel:
        held = await ctx.get(shelf_key, type_hint=dict[str, int]) or {}
        sold = held.pop(ref.order_id, 0)
        ctx.set(shelf_key, held)
        return StockLevel(sku=ctx.key(), available=1, reserved=0, sold=sold, stocked=1 + sold)

    return [service]


def email() -> "list[RestateService]":
    from shop.shared.contracts.email import EmailReceipt, EmailRequest

    service = restate.Service(names.EMAIL)

    def sent(request: EmailRequest) -> EmailReceipt:
        return EmailReceipt(message_id=f"<{request.order_id}.{request.kind}@skeleton>")

    @service.handler()
    async def send(ctx: Context, request: EmailRequest) -> EmailReceipt:
        return await ctx.run_typed("smtp-send", sent, RunOptions(), request=request)

    return [service]


def orders() -> "list[RestateService]":
    from shop.shared.contracts.orders import BookEntry

    service = restate.VirtualObject(names.ORDERS)

    @service.handler(ingress_private=True)
    async def record(ctx: ObjectContext, entry: BookEntry) -> None:
        return None  # the book's write (PostgreSQL) is a side effect: left out

    return [service]


def order_body(order_id: str) -> bytes:
    """What the gateway starts an order's workflow with (one sticker pack, a card that needs
    no 3-D Secure), as the skeleton's ingress call."""
    from shop.shared.contracts.common import OrderLine
    from shop.shared.contracts.fulfilment import Order

    line = OrderLine(
        product_id="sticker-pack", name="Sticker pack", quantity=1, unit_price_cents=400
    )
    return (
        Order(
            order_id=order_id,
            customer_email="bench@example.com",
            lines=[line],
            currency="eur",
            payment_method="pm_card_visa",
            placed_at=datetime.now(UTC),
        )
        .model_dump_json()
        .encode()
    )


def start(stack: "Stack") -> list["subprocess.Popen[bytes]"]:
    """The skeleton's five processes beside the stack's services (on free ports), registered
    with its Restate server; the caller stops them."""
    from shop.dev.stack import Ports

    env = {**os.environ, **stack.shared_env(), "LOG_LEVEL": "WARNING", "CANCEL_WINDOW_SECONDS": "0"}
    ports = Ports.free()
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, role], env={**env, "PORT": str(getattr(ports, role))}
        )
        for role in ROLES
    ]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = httpx.get(f"{stack.admin_url}/services", timeout=5).json()["services"]
        if set(SERVICES) <= {s["name"] for s in listed}:
            return processes
        time.sleep(0.25)
    stop(processes)
    raise TimeoutError("the skeleton's services did not register")


def stop(processes: list["subprocess.Popen[bytes]"]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()


def main(role: str) -> None:
    rename()
    from shop.fulfilment.settings import settings
    from shop.shared.serve import run

    parts = {"fulfilment": fulfilment, "payments": payments, "inventory": inventory}
    parts |= {"email": email, "orders": orders}
    run(f"skeleton-{role}", parts[role](), settings)


if __name__ == "__main__":
    main(sys.argv[1])
