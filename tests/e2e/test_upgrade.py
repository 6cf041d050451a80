"""A new version of OrderFulfilment while orders are in flight: new orders run on the new
deployment, orders already in their cancellation window finish on the old one, and the old
deployment is removed only once Restate shows nothing pinned to it.

Both versions are processes of this test beside the session stack, each at its own URL and
registered without `force`: v1 has a cancellation window long enough to still hold orders
when v2 arrives, v2 says so in its progress messages. Afterwards the stack's own fulfilment
is the newest deployment again and both test deployments are gone, so later tests see the
stack as it was."""

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from httpx_sse import connect_sse

from shop.dev.deployments import Admin, AdminError, drain, find, version_env
from shop.dev.stack import Stack, free_port
from shop.shared import names
from shop.shared.serve import register
from shop.shared.settings import ServiceSettings

from .conftest import Restate
from .helpers import FINAL, cancel, eventually, final_status, place, status_of

V1_WINDOW_SECONDS = 6  # well beyond registering v2 and cancelling take, even on a loaded machine
ITEMS = [{"product_id": "mug-classic", "quantity": 1}]


class Versions:
    """Fulfilment processes beside the stack, one per version, each at its own port."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.admin = Admin(stack.shared_env()["RESTATE_ADMIN_URL"])
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, version: str, **env: str) -> tuple[str, int]:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = (self.stack.state / "logs" / f"fulfilment-{version}-{port}.log").open("wb")
        self.processes[url] = subprocess.Popen(
            [sys.executable, "-m", "shop.fulfilment"],
            env={**version_env(self.stack, "fulfilment", version, port), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return url, port

    def newest_is(self, url: str) -> str | None:
        """The deployment id at `url` once it is where new orders go."""
        newest = self.admin.newest_deployment(names.FULFILMENT)
        known = [d["id"] for d in self.admin.deployments() if d["uri"].rstrip("/") == url]
        return newest if known and newest == known[0] else None

    def stop(self, url: str) -> int:
        process = self.processes.pop(url)
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=15)

    def leave_stack_as_found(self) -> None:
        """The stack's own fulfilment becomes the newest deployment again (what it does itself
        when it starts: register with force), then the test's deployments are drained and
        removed, and their processes stopped."""
        own = f"http://127.0.0.1:{self.stack.ports.fulfilment}"
        self.admin.register(own, force=True)
        for url in list(self.processes):
            try:
                find(self.admin, url)
            except AdminError:
                pass  # never registered, or already drained by the test
            else:
                try:
                    drain(self.admin, url, timeout=60, poll_seconds=0.2, out=lambda _: None)
                except TimeoutError as e:  # the test failed already; keep the stack usable
                    print(f"removing anyway: {e}", file=sys.stderr)
                    self.admin.delete(find(self.admin, url)["id"])
            self.stop(url)


@pytest.fixture
def versions(stack: Stack) -> Iterator[Versions]:
    versions = Versions(stack)
    try:
        yield versions
    finally:
        versions.leave_stack_as_found()


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def pinned_deployment(restate_admin: Restate, order_id: str) -> str:
    rows = restate_admin.query(
        "SELECT pinned_deployment_id AS dp FROM sys_invocation "
        f"WHERE target = 'OrderFulfilment/{order_id}/run'"
    )
    return str(rows[0]["dp"])


def received_message(gateway: httpx.Client, order_id: str) -> str:
    """What the order's page said when it was received: its event stream from the start."""
    url = f"/api/orders/{order_id}/events"
    with connect_sse(gateway, "GET", url, headers={"Last-Event-ID": "0"}) as source:
        events = [json.loads(e.data) for e in source.iter_sse() if e.data]
    return next(e["message"] for e in events if e["step"] == "received")


def test_new_version_takes_new_orders_while_orders_in_flight_finish_on_the_old(
    stack: Stack, gateway: httpx.Client, versions: Versions, restate_admin: Restate
) -> None:
    # v1 registers itself without force at its own URL; v2 runs from the start, and is
    # registered (by the code it registers itself with) once v1 holds orders.
    v1, _ = versions.start("v1", CANCEL_WINDOW_SECONDS=str(V1_WINDOW_SECONDS))
    v2, v2_port = versions.start("v2", RESTATE_REGISTER="false")
    dp_v1 = eventually(lambda: versions.newest_is(v1), timeout=60)

    kept, withdrawn = place(gateway, ITEMS), place(gateway, ITEMS)
    for order_id in (kept, withdrawn):

        def reserved(o: str = order_id) -> bool:
            return status_of(gateway, o)["step"] == "reserved"

        eventually(reserved, timeout=30)

    eventually(lambda: healthy(v2), timeout=60, every=0.2)
    v2_settings = ServiceSettings(
        port=v2_port,
        bind_host="127.0.0.1",
        advertised_url=None,
        restate_admin_url=stack.shared_env()["RESTATE_ADMIN_URL"].split(","),
        restate_register_force=False,
    )
    asyncio.run(register(v2_settings))
    dp_v2 = versions.newest_is(v2)
    assert dp_v2 and dp_v2 != dp_v1
    assert {d["id"] for d in versions.admin.deployments()} >= {dp_v1, dp_v2}

    # A customer withdraws an order in v1's window: the cancel handler runs on v2, the
    # order's run unwinds on v1. A new order runs on v2.
    assert cancel(gateway, withdrawn).status_code == 202
    fresh = place(gateway, ITEMS)
    assert status_of(gateway, kept)["status"] == "running", "v1's window ended too early"

    # Drain v1 while watching: it stays registered as long as any of its orders runs.
    printed: list[str] = []
    with ThreadPoolExecutor(1) as pool:
        draining = pool.submit(drain, versions.admin, v1, 90, 0.2, printed.append)
        while not draining.done():
            listed = dp_v1 in {d["id"] for d in versions.admin.deployments()}
            if not listed:
                for order_id in (kept, withdrawn):
                    assert status_of(gateway, order_id)["status"] in FINAL, order_id
            time.sleep(0.2)
        assert draining.result() == dp_v1
    assert any(line.startswith("waiting for") and "OrderFulfilment.run" in line for line in printed)
    assert dp_v1 not in {d["id"] for d in versions.admin.deployments()}
    versions.stop(v1)  # it serves nothing any more

    assert final_status(gateway, kept)["status"] == "completed"
    assert final_status(gateway, withdrawn)["status"] == "cancelled"
    assert final_status(gateway, fresh)["status"] == "completed"
    assert pinned_deployment(restate_admin, kept) == dp_v1
    assert pinned_deployment(restate_admin, withdrawn) == dp_v1
    assert pinned_deployment(restate_admin, fresh) == dp_v2
    assert received_message(gateway, kept) == "Order received"
    assert received_message(gateway, fresh) == "Order received (fulfilment v2)"
