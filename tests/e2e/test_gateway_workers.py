"""GATEWAY_WORKERS=2: two gateway processes share the port, each with its own Valkey
subscription, and every SSE client gets its order's events whichever process it reached.
Runs a stack of its own."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from httpx_sse import aconnect_sse
from prometheus_client.parser import text_string_to_metric_families

from shop.dev.stack import NO_CLIENT_LIMITS, Ports, Stack

from .helpers import customer, eventually

CLIENTS = 12


@pytest.fixture(autouse=True)
def invariants() -> None:
    """This test runs on a stack of its own; the shared stack's invariants do not apply."""


@pytest.fixture(scope="module")
def workers_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        state=tmp_path_factory.mktemp("gateway-workers"),
        ports=Ports.free(),
        service_env={"GATEWAY_WORKERS": "2", "CANCEL_WINDOW_SECONDS": "1", **NO_CLIENT_LIMITS},
    )
    with stack.running(timeout=90):
        yield stack


def workers(pid: int) -> list[int]:
    """The uvicorn workers of the gateway process `pid` (not multiprocessing's tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def test_every_client_follows_its_order_to_the_end_on_two_workers(workers_stack: Stack) -> None:
    gateway_pid = int(workers_stack.ctl("pid", "gateway").strip())
    # the first worker may answer /readyz while the second is still being spawned
    eventually(lambda: len(workers(gateway_pid)) == 2, what="two gateway workers")

    async def place_and_follow(client: httpx.AsyncClient) -> list[str]:
        body = {
            "customer_email": customer(),
            "items": [{"product_id": "mug-classic", "quantity": 1}],
        }
        placed = await client.post("/api/orders", json=body)
        assert placed.status_code == 202, placed.text
        order_id = placed.json()["order_id"]
        async with aconnect_sse(client, "GET", f"/api/orders/{order_id}/events") as source:
            return [event.event async for event in source.aiter_sse()]

    async def all_clients() -> list[list[str]]:
        # A connection each, so the kernel spreads them over both processes.
        async def one() -> list[str]:
            async with httpx.AsyncClient(base_url=workers_stack.gateway_url, timeout=60) as c:
                return await place_and_follow(c)

        return await asyncio.gather(*(one() for _ in range(CLIENTS)))

    for events in asyncio.run(all_clients()):
        assert events[-1] == "complete", events
        assert events.count("progress") >= 1, events


def test_a_scrape_counts_what_every_worker_served(workers_stack: Stack) -> None:
    """Whichever worker a scrape reaches, its answer adds up both: the orders the 12 clients
    placed (spread over the two workers) and every push each worker's subscription got."""

    def counted() -> tuple[float, float]:
        # A connection each, so the kernel hands the scrapes to either process.
        text = httpx.get(f"{workers_stack.gateway_url}/metrics", timeout=10).text
        values = {
            family.name: sum(
                s.value for s in family.samples if s.name.endswith(("_total", "_count"))
            )
            for family in text_string_to_metric_families(text)
        }
        return values["shop_orders_started"], values["shop_sse_push_lag_seconds"]

    scrapes = {counted() for _ in range(10)}
    [(started, pushes)] = scrapes  # the same answer from both workers
    assert started == CLIENTS
    # each worker got every order's pushes (one subscription each): 2 workers x 12 orders x
    # at least 5 steps
    assert pushes >= 2 * CLIENTS * 5


def test_stopping_the_gateway_stops_every_worker(workers_stack: Stack) -> None:
    gateway_pid = int(workers_stack.ctl("pid", "gateway").strip())
    children = workers(gateway_pid)
    started = time.monotonic()
    workers_stack.ctl("stop", "gateway")
    assert time.monotonic() - started < 15
    assert not [c for c in children if Path(f"/proc/{c}").exists()]
    assert "started" in workers_stack.ctl("start", "gateway")
