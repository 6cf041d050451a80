"""Each service and the gateway stop quickly on SIGTERM: within 2 s when idle, and with orders
in flight within their drain deadline, without losing a step: every order still completes,
once (the invariants check the money, the stock and the mail)."""

import functools
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from shop.dev.stack import SERVICES, Stack
from shop.shared.settings import ShopSettings

from .helpers import eventually, final_status, place, status_of

PROGRAMS = (*SERVICES, "gateway")
IDLE_EXIT_SECONDS = 2.0
DRAIN_SECONDS = ShopSettings.model_fields["shutdown_drain_seconds"].default
SLACK_SECONDS = 1.0  # from the signal to the process gone, beyond the deadline itself


def pid_of(stack: Stack, program: str) -> int:
    return int(stack.ctl("pid", program).strip())


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has exited; supervisord has not reaped it yet


def terminate(stack: Stack, programs: tuple[str, ...], timeout: float) -> dict[str, float]:
    """SIGTERM every program at once; how long each took to exit (inf: not within timeout)."""
    pids = {name: pid_of(stack, name) for name in programs}
    started = time.monotonic()
    for pid in pids.values():
        os.kill(pid, signal.SIGTERM)
    took = dict.fromkeys(programs, float("inf"))
    while time.monotonic() - started < timeout and any(t == float("inf") for t in took.values()):
        for name, pid in pids.items():
            if took[name] == float("inf") and not alive(pid):
                took[name] = time.monotonic() - started
        time.sleep(0.01)
    back_again(stack, pids)
    return took


def back_again(stack: Stack, old: dict[str, int]) -> None:
    """supervisord restarts each program that exited: wait until each serves again."""

    def serving(name: str) -> bool:
        path = "/healthz" if name == "gateway" else "/health"
        try:
            pid = pid_of(stack, name)
            port = getattr(stack.ports, name)
            answer = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1)
        except (ValueError, httpx.HTTPError):
            return False
        return pid != old[name] and answer.status_code == 200

    for name in old:
        eventually(functools.partial(serving, name), timeout=60, every=0.2)
    stack.wait_ready(timeout=60)


def test_idle_services_and_gateway_exit_within_two_seconds(
    stack: Stack, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params["stack"] != "normal":
        pytest.skip("an idle process stops the same whatever Restate's mode: measured once")
    took = terminate(stack, PROGRAMS, timeout=DRAIN_SECONDS + 5)
    print("exit after SIGTERM, idle:", {k: round(v, 2) for k, v in took.items()})
    assert all(t < IDLE_EXIT_SECONDS for t in took.values()), took


@pytest.mark.parametrize("stripe_seconds", [8], ids=["stripe-slower-than-the-deadline"])
def test_under_load_each_exits_within_its_drain_deadline_and_every_order_completes(
    stack: Stack, gateway: httpx.Client, stripe_seconds: int
) -> None:
    # Two authorizations outlast the drain deadline: Payments is cut off in the middle of them.
    faults = {"latency_next": 2, "latency_ms": stripe_seconds * 1000}
    httpx.put(f"{stack.stripe_url}/_emulator/faults", json=faults).raise_for_status()
    orders = [place(gateway, [{"product_id": "sticker-pack", "quantity": 1}]) for _ in range(6)]
    # ...and the others are in their cancellation window, or past it, when the signal comes.
    eventually(lambda: any(status_of(gateway, o).get("step") == "reserved" for o in orders))
    streams = [threading.Thread(target=follow, args=(stack, o), daemon=True) for o in orders[:2]]
    for stream in streams:
        stream.start()

    took = terminate(stack, PROGRAMS, timeout=DRAIN_SECONDS + 5)
    print("exit after SIGTERM, under load:", {k: round(v, 2) for k, v in took.items()})
    assert all(t < DRAIN_SECONDS + SLACK_SECONDS for t in took.values()), took
    for order_id in orders:
        assert final_status(gateway, order_id, timeout=90)["status"] == "completed"


def follow(stack: Stack, order_id: str) -> None:
    """A browser on the order's page: its progress stream, until the gateway ends it."""
    try:
        with httpx.stream("GET", f"{stack.gateway_url}/api/orders/{order_id}/events") as stream:
            for _ in stream.iter_lines():
                pass
    except httpx.HTTPError:
        pass
