"""The local stack restarts a process that dies, and orders still complete."""

import os
import signal

import httpx

from shop.dev.stack import Stack

from .helpers import eventually, final_status, place, status_of


def pid_of(stack: Stack, program: str) -> int | None:
    out = stack.ctl("pid", program).strip()
    return int(out) if out.isdigit() and out != "0" else None


def test_a_killed_service_is_restarted_and_orders_complete(
    stack: Stack, gateway: httpx.Client
) -> None:
    before = pid_of(stack, "inventory")
    assert before
    os.kill(before, signal.SIGKILL)

    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 1}])

    eventually(lambda: (pid := pid_of(stack, "inventory")) and pid != before, timeout=30)
    assert final_status(gateway, order_id, timeout=60)["status"] == "completed"


def test_restate_killed_during_the_cancel_window_resumes_the_order(
    stack: Stack, gateway: httpx.Client
) -> None:
    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 1}])
    eventually(lambda: status_of(gateway, order_id).get("step") == "reserved")
    before = pid_of(stack, "restate")
    assert before
    os.kill(before, signal.SIGKILL)  # the journal and the timer live on disk

    eventually(lambda: (pid := pid_of(stack, "restate")) and pid != before, timeout=30)
    stack.wait_ready(timeout=60)
    assert final_status(gateway, order_id, timeout=90)["status"] == "completed"
