"""SSE fan-out benchmark: N browsers, each following its own order, on the gateway's worker
processes (GATEWAY_WORKERS, 2 by default here; each has its own Valkey subscription).

It starts the real stack (like the e2e tests) with a one-hour cancellation window, so every
order waits in flight; opens N SSE streams; then publishes progress events for all orders
through Valkey, the way the workflow does, stamped with the time of publishing. It prints
the connections held, the gateway's memory per connection and the publish-to-client lag,
next to a baseline measured in the same run: a bare Valkey subscriber receiving the same
events with no gateway in between.

    ./task bench -- sse --clients 5000 --gateway-workers 2
"""

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import redis.asyncio as redis
from procs import rss_kib

from shop.dev.stack import NO_CLIENT_LIMITS, Ports, Stack
from shop.shared import progress_feed
from shop.shared.contracts.fulfilment import OrderStatus

BENCH_SEQ = 1000  # above any real step, so the gateway forwards them as news


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def place_orders(stack: Stack, n: int) -> list[str]:
    admin = {"Authorization": f"Bearer {stack.shared_env()['ADMIN_TOKEN']}"}
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60, limits=limits) as client:
        stock = await client.put(
            "/api/admin/products/sticker-pack/stock", json={"quantity": 10 * n}, headers=admin
        )
        stock.raise_for_status()
        gate = asyncio.Semaphore(64)

        run = uuid.uuid4().hex[:8]

        async def place(i: int) -> str:
            body = {
                "customer_email": f"bench{i}@example.com",
                "items": [{"product_id": "sticker-pack", "quantity": 1}],
            }
            # A retried POST with the same key is the same order: safe after a dropped connection.
            headers = {"Idempotency-Key": f"bench-{run}-{i}"}
            async with gate:
                for attempt in range(5):
                    try:
                        response = await client.post("/api/orders", json=body, headers=headers)
                        break
                    except httpx.TransportError:
                        if attempt == 4:
                            raise
            response.raise_for_status()
            return response.json()["order_id"]

        return await asyncio.gather(*(place(i) for i in range(n)))


class Client:
    """One browser: a raw HTTP/1.1 SSE reader (cheap, so the generator is not the bottleneck)."""

    def __init__(self, port: int, order_id: str) -> None:
        self.port, self.order_id = port, order_id
        self.connected = asyncio.Event()
        self.lags_ms: list[float] = []

    async def run(self, ramp: asyncio.Semaphore) -> None:
        """Reads events until cancelled."""
        async with ramp:  # connect in waves, as real traffic arrives, not 5000 SYNs at once
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(
                f"GET /api/orders/{self.order_id}/events HTTP/1.1\r\nHost: bench\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            await writer.drain()
            while not self.connected.is_set():
                line = await reader.readline()
                if not line:
                    return
                if line.startswith(b"data:"):
                    self.connected.set()  # the snapshot
        try:
            while line := await reader.readline():
                if line.startswith(b"data:") and (sent := stamp(line)) is not None:
                    self.lags_ms.append((time.time_ns() - sent) / 1e6)
        finally:
            writer.close()


def stamp(data: bytes) -> int | None:
    """The publish time in a bench event (`"message":"bench:<ns>"`), without parsing the JSON:
    the clients share this process's CPU with the measurement, so they keep to the minimum."""
    at = data.find(b'"bench:')
    return int(data[at + 7 : data.index(b'"', at + 7)]) if at >= 0 else None


def event(order_id: str, seq: int) -> str:
    return OrderStatus(
        order_id=order_id,
        status="running",
        step="reserved",
        percent=45,
        message=f"bench:{time.time_ns()}",
        seq=seq,
    ).model_dump_json()


async def publish_rounds(valkey: redis.Redis, orders: list[str], rounds: int) -> None:
    for r in range(rounds):
        async with valkey.pipeline(transaction=False) as pipe:
            for order_id in orders:
                pipe.publish(progress_feed.CHANNEL, event(order_id, BENCH_SEQ + r))
            await pipe.execute()
        await asyncio.sleep(1.0)


async def baseline(stack: Stack, orders: list[str], rounds: int) -> list[float]:
    """The same events to one bare Valkey subscriber: the floor the gateway adds to."""
    valkey = redis.Redis(port=stack.ports.valkey)
    lags: list[float] = []
    async with valkey.pubsub() as pubsub:
        await pubsub.subscribe(progress_feed.CHANNEL)
        await pubsub.get_message(timeout=1)  # the subscribe confirmation
        publisher = asyncio.create_task(publish_rounds(valkey, orders, rounds))
        expected = len(orders) * rounds
        while len(lags) < expected:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            if message is None:
                break
            if (sent := stamp(message["data"])) is not None:
                lags.append((time.time_ns() - sent) / 1e6)
        await publisher
    await valkey.aclose()
    return lags


async def measure(stack: Stack, gateway_pid: int, n: int, rounds: int, workers: int) -> None:
    started = time.monotonic()
    orders = await place_orders(stack, n)
    print(
        f"placed {n} orders in {time.monotonic() - started:.1f}s (each held in its cancel window)"
    )

    base = await baseline(stack, orders, rounds)  # the same bursts as the SSE clients get

    rss_before = rss_kib(gateway_pid)
    ramp = asyncio.Semaphore(200)
    clients = [Client(stack.ports.gateway, o) for o in orders]
    tasks = [asyncio.create_task(c.run(ramp)) for c in clients]
    started = time.monotonic()
    while sum(c.connected.is_set() for c in clients) + sum(t.done() for t in tasks) < n:
        await asyncio.sleep(0.5)
        if time.monotonic() - started > 600:
            break
    connect_s = time.monotonic() - started
    rss_after = rss_kib(gateway_pid)

    valkey = redis.Redis(port=stack.ports.valkey)
    cpu = time.process_time()
    await publish_rounds(valkey, orders, rounds)
    await asyncio.sleep(2)
    generator_cpu = time.process_time() - cpu
    held = sum(1 for t in tasks if not t.done())
    failed = sum(1 for t in tasks if t.done() and t.exception() is not None)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await valkey.aclose()

    lags = [lag for c in clients for lag in c.lags_ms]
    print(f"\nSSE fan-out, {workers} gateway worker(s), {n} clients each following its own order")
    print(
        f"  connections held        {held} of {n} ({failed} failed; connected in {connect_s:.1f}s)"
    )
    print(
        f"  gateway RSS             {rss_before / 1024:.0f} MiB idle -> {rss_after / 1024:.0f} MiB"
    )
    print(f"  memory per connection   {(rss_after - rss_before) / n:.1f} KiB")
    print(f"  events delivered        {len(lags)} of {n * rounds} ({rounds} rounds of {n})")
    for name, values in (("baseline: bare Valkey subscriber", base), ("gateway SSE clients", lags)):
        if values:
            print(
                f"  lag {name:<33} p50 {statistics.median(values):7.1f} ms"
                f"   p99 {pct(values, 99):7.1f} ms   max {max(values):7.1f} ms"
            )
    print(f"  load generator CPU      {generator_cpu:.1f}s over the publish phase")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gateway-workers", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="shop-bench-") as tmp:
        stack = Stack(
            state=Path(tmp),
            ports=Ports.free(),
            # Every order is held in its window on purpose: no admission bound for that, and
            # room in Restate for that many open invocations beside the SSE clients' reads.
            restate_env={"RESTATE_WORKER__INVOKER__CONCURRENT_INVOCATIONS_LIMIT": "20000"},
            service_env={
                "CANCEL_WINDOW_SECONDS": "3600",
                "LOG_LEVEL": "WARNING",
                "MAX_ORDERS_IN_FLIGHT": str(10 * args.clients),
                "GATEWAY_WORKERS": str(args.gateway_workers),
                **NO_CLIENT_LIMITS,
            },
        )
        with stack.running():
            gateway_pid = int(stack.ctl("pid", "gateway").strip())
            asyncio.run(
                measure(stack, gateway_pid, args.clients, args.rounds, args.gateway_workers)
            )


if __name__ == "__main__":
    main()
