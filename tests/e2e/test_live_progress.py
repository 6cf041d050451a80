"""Live progress: exactly what a reconnecting browser missed, one Valkey subscription per
gateway, pings, and orders that complete with Valkey down."""

import asyncio

import httpx
import redis
from httpx_sse import aconnect_sse, connect_sse

from shop.dev.stack import Stack
from shop.shared import progress_feed

from .helpers import eventually, final_status, place


def test_reconnect_with_last_event_id_gets_exactly_what_was_missed(gateway: httpx.Client) -> None:
    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 1}])
    url = f"/api/orders/{order_id}/events"
    with connect_sse(gateway, "GET", url) as source:
        first = next(e for e in source.iter_sse() if e.data)  # then the browser goes away
    final = final_status(gateway, order_id)

    with connect_sse(gateway, "GET", url, headers={"Last-Event-ID": first.id}) as source:
        missed = [e for e in source.iter_sse() if e.data]  # pings carry no data
    ids = [int(e.id) for e in missed]
    assert ids == list(range(int(first.id) + 1, ids[-1] + 1)), "every missed event, once, in order"
    assert missed[-1].event == "complete" and missed[-1].json()["status"] == final["status"]


def test_one_valkey_subscription_serves_every_client(stack: Stack, gateway: httpx.Client) -> None:
    orders = [place(gateway, [{"product_id": "sticker-pack", "quantity": 1}]) for _ in range(10)]
    valkey = redis.Redis(port=stack.ports.valkey)

    async def follow_all() -> list[list[str]]:
        opened: list[str] = []
        all_open = asyncio.Event()
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:

            async def follow(order_id: str) -> list[str]:
                async with aconnect_sse(client, "GET", f"/api/orders/{order_id}/events") as source:
                    opened.append(order_id)  # the gateway answered: it holds this stream
                    if len(opened) == len(orders):
                        all_open.set()
                    return [
                        e.event async for e in source.aiter_sse() if e.data
                    ]  # pings carry no data

            tasks = [asyncio.create_task(follow(o)) for o in orders]
            await asyncio.wait_for(all_open.wait(), timeout=30)
            subscribers = valkey.pubsub_numsub(progress_feed.CHANNEL)[0][1]
            assert subscribers == 1, subscribers
            return await asyncio.gather(*tasks)

    for events in asyncio.run(follow_all()):
        assert events[-1] == "complete"


def test_stream_headers_and_keep_alive_pings(stack: Stack, gateway: httpx.Client) -> None:
    # The authorization takes 2.5 s, longer than the test stack's 1 s ping interval.
    httpx.put(f"{stack.stripe_url}/_emulator/faults", json={"latency_next": 1, "latency_ms": 2500})
    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 1}])
    with gateway.stream("GET", f"/api/orders/{order_id}/events") as response:
        assert response.headers["x-accel-buffering"] == "no"
        assert "no-store" in response.headers["cache-control"]
        lines = list(response.iter_lines())
    assert any(line.startswith(": ping") for line in lines), lines
    assert "event: complete" in lines


def test_orders_complete_with_valkey_down_and_streams_catch_up(
    stack: Stack, gateway: httpx.Client
) -> None:
    stack.ctl("stop", "valkey")
    try:
        order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 1}])
        with connect_sse(gateway, "GET", f"/api/orders/{order_id}/events") as source:
            events = [e for e in source.iter_sse() if e.data]  # pings carry no data
        assert events[-1].event == "complete"  # from the durable status, read while waiting
        assert gateway.get("/readyz").json()["live_updates"] == "reconnecting"
    finally:
        stack.ctl("start", "valkey")
    eventually(lambda: gateway.get("/readyz").json()["live_updates"] == "connected", timeout=30)

    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 1}])
    with connect_sse(gateway, "GET", f"/api/orders/{order_id}/events") as source:
        names = [e.event for e in source.iter_sse() if e.data]  # pings carry no data
    assert names[-1] == "complete" and "progress" in names
