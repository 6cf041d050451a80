"""Orders per second: the whole order path measured against the engine's floor, in one run.

It starts the real stack (like the e2e tests) with no cancellation window, and a no-op Restate
service beside it on the same Restate server, then prints:

- floor: the no-op handler through the ingress, calls/s at 32 connections (with Restate's and
  the service's CPU per call) and p50 at one (wrk); the same for a handler that calls it once
  through Restate: the cost of one step between services, of which an order makes five
  (authorize, reserve, capture, commit, email), four of them one after another;
- the shop's order beside the skeleton order: the order's call graph with every side effect
  replaced by nothing (bench/skeleton.py: the shop's workflow under other names, on the same
  Restate server), started at the ingress as the gateway starts a shop order. Side by side,
  so that this machine's drifting speed moves both alike:
  - unloaded: one order at a time, in turn, to its outcome: p50 (the shop's from its POST);
  - closed loop: N clients, each placing an order and waiting for its outcome, in rounds
    that alternate skeleton and shop: orders/s (and the ratios to the no-op calls/s and the
    skeleton's), p50/p99; the CPU per order of every process (for the shop, the Stripe
    emulator and the SMTP server apart: they stand in for providers, but share the cores);
    and the order book's lag: from each outcome to its final row in PostgreSQL, p50/p99;
- half load: orders offered at half the closed-loop rate: p50/p99 (p99 as a multiple of p50);
- open loop: wrk offers 3x the closed-loop rate for S seconds: accepted, shed (429), and the
  rate at which the accepted backlog completes (and its ratio to the closed-loop rate);
- last, one line of the ratios issue 25 sets targets for (shop/skeleton throughput >= 0.8,
  p50 <= 1.25; skeleton/no-op throughput >= 0.08; backlog >= 0.9):
  `RATIO shop/skeleton throughput=... p50=... skeleton/noop throughput=... backlog=...`

The load comes from wrk (C) and an aiohttp client whose own CPU is printed too, so the load
generator is not mistaken for the bottleneck. It asserts nothing.

    ./task bench -- orders --clients 32 --seconds 20
"""

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import aiohttp
import httpx
import skeleton
from procs import cpu_seconds

from shop.dev.stack import NO_CLIENT_LIMITS, ONE_SHOTS, Ports, Stack

HERE = Path(__file__).parent
ORDER = (
    b'{"customer_email": "bench@example.com",'
    b' "items": [{"product_id": "sticker-pack", "quantity": 1}]}'
)
JSON = {"content-type": "application/json"}
PROVIDERS = ("stripe", "smtp")  # emulators of what runs elsewhere in production


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class Cpu:
    """CPU seconds of each of these processes (and this one), between two readings."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = {**pids, "load generator": os.getpid()}

    @classmethod
    def of(cls, stack: Stack, names: list[str]) -> "Cpu":
        return cls({name: int(stack.ctl("pid", name).strip()) for name in names})

    def per_order(self, before: dict[str, float], orders: int) -> dict[str, float]:
        """ms of CPU per order of each process since `before`, the largest first."""
        after = self.read()
        used = {name: (after[name] - before[name]) * 1000 / orders for name in after}
        return dict(sorted(used.items(), key=lambda item: -item[1]))

    def read(self) -> dict[str, float]:
        # The load generator alone: the stack it started is its descendants.
        return {
            name: cpu_seconds(pid, descendants=name != "load generator")
            for name, pid in self.pids.items()
        }


# ---- wrk -----------------------------------------------------------------------------------


def wrk(url: str, connections: int, seconds: float, script: str, latency: bool = False) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        threads = min(2, connections)
        command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "-s", lua.name]
        if latency:
            command.append("--latency")
        return subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout


def post_script(body: bytes, delay_ms: float | None = None) -> str:
    lua = (
        'wrk.method = "POST"\n'
        f"wrk.body = [[{body.decode()}]]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    if delay_ms is not None:  # each connection waits this long between requests: a fixed rate
        lua += f"function delay() return {delay_ms:.1f} end\n"
    return lua


def wrk_line(pattern: str, output: str) -> re.Match[str]:
    """The line of wrk's output that the pattern finds (there must be one)."""
    match = re.search(pattern, output)
    if match is None:
        raise ValueError(f"no {pattern!r} in wrk's output:\n{output}")
    return match


def wrk_rate(output: str) -> float:
    return float(wrk_line(r"Requests/sec:\s+([\d.]+)", output).group(1))


def wrk_ms(output: str, line: str) -> float:
    """A latency from wrk's output (`50%` of --latency), in ms."""
    value, unit = wrk_line(rf"{line}\s+([\d.]+)(us|ms|s)\b", output).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


SOCKET_ERRORS = r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"


def wrk_counts(output: str) -> tuple[int, int]:
    """(requests sent, non-2xx answers or socket errors)."""
    total = int(wrk_line(r"(\d+) requests in", output).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(SOCKET_ERRORS, output)
    failed = int(non2xx.group(1)) if non2xx else 0
    if errors:
        failed += sum(int(n) for n in errors.groups())
    return total, failed


def client_session() -> aiohttp.ClientSession:
    """The load generator's HTTP client: no connection limit, and an idle connection dropped
    before the servers drop it (uvicorn after 5 s; aiohttp's default, 15 s, let it send on a
    connection the gateway was closing: "Connection reset by peer")."""
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=2)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=300))


# ---- skeleton orders through the ingress ----------------------------------------------------


class Skeleton:
    """The same interface as Shop: the skeleton's workflow started at the ingress (the gateway
    starts the shop's with the same call), its outcome awaited as the shop's is."""

    def __init__(self, stack: Stack, session: aiohttp.ClientSession) -> None:
        self.stack, self.session = stack, session
        self.shed = 0
        self.done: dict[str, float] = {}
        self.workflow = f"{skeleton.PREFIX}OrderFulfilment"

    async def order(self) -> float | None:
        order_id = f"ord_{uuid.uuid4().hex[:24]}"
        started = time.perf_counter()
        async with self.session.post(
            f"{self.stack.ingress_url}/{self.workflow}/{order_id}/run/send",
            data=skeleton.order_body(order_id),
            headers=JSON,
        ) as response:
            response.raise_for_status()
        outcome = f"{self.stack.ingress_url}/restate/workflow/{self.workflow}/{order_id}/attach"
        async with self.session.get(outcome) as response:
            response.raise_for_status()
            if (await response.json())["status"] != "completed":
                raise RuntimeError(f"skeleton order {order_id} did not complete")
        return time.perf_counter() - started


# ---- orders through the gateway -------------------------------------------------------------


class Shop:
    def __init__(self, stack: Stack, session: aiohttp.ClientSession) -> None:
        self.stack, self.session = stack, session
        self.shed = 0
        # When each order's outcome reached its client (wall clock), for the book's lag.
        self.done: dict[str, float] = {}

    async def order(self) -> float | None:
        """Place an order and wait for its outcome; seconds taken, or None if it was shed."""
        started = time.perf_counter()
        async with self.session.post(
            f"{self.stack.gateway_url}/api/orders", data=ORDER, headers=JSON
        ) as response:
            if response.status == 429:
                self.shed += 1
                return None
            response.raise_for_status()
            order_id = (await response.json())["order_id"]
        outcome = f"{self.stack.ingress_url}/restate/workflow/OrderFulfilment/{order_id}/attach"
        async with self.session.get(outcome) as response:
            response.raise_for_status()
            if (await response.json())["status"] != "completed":
                raise RuntimeError(f"order {order_id} did not complete")
        self.done[order_id] = time.time()
        return time.perf_counter() - started


def book_lag(stack: Stack, done: dict[str, float]) -> list[float]:
    """Per order, ms from its outcome reaching the client (the run's end, through Restate) to
    its final status in the order book (the row's time, the same machine's clock); < 0: the
    book had it first. Read after the load, so the reads cost the load nothing."""
    admin = {"Authorization": f"Bearer {stack.shared_env()['ADMIN_TOKEN']}"}

    def lag(client: httpx.Client, order_id: str) -> float:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            record = client.get(f"/api/admin/orders/{order_id}", headers=admin)
            if record.status_code == 200 and record.json()["status"] == "completed":
                at = datetime.fromisoformat(record.json()["history"][-1]["at"]).timestamp()
                return (at - done[order_id]) * 1000
            time.sleep(0.2)
        raise TimeoutError(f"order {order_id} not final in the book after 60 s")

    with (
        httpx.Client(base_url=stack.gateway_url, timeout=30) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        return list(pool.map(lambda order_id: lag(client, order_id), done))


async def closed_loop(
    shop: "Shop | Skeleton", clients: int, seconds: float, in_time: list[float] | None = None
) -> list[float]:
    """Each client places orders one after another until the deadline; the latencies of all
    (the last ones end after it). `in_time` gets the latencies of those done by the deadline."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def client() -> None:
        while time.monotonic() < deadline:
            taken = await shop.order()
            if taken is not None:
                latencies.append(taken)
                if in_time is not None and time.monotonic() <= deadline:
                    in_time.append(taken)
            else:
                await asyncio.sleep(0.05)

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


async def fixed_rate(shop: "Shop | Skeleton", rate: float, seconds: float) -> list[float]:
    """Orders started at `rate` per second whatever happens to them (an open loop)."""
    latencies: list[float] = []
    tasks: list[asyncio.Task[None]] = []

    async def one() -> None:
        taken = await shop.order()
        if taken is not None:
            latencies.append(taken)

    start = time.monotonic()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return latencies


def runs(stack: Stack, status: str | None = None) -> int:
    """Workflow runs Restate has accepted so far (or only those in `status`)."""
    where = f" AND status = '{status}'" if status else ""
    response = httpx.post(
        f"{stack.admin_url}/query",
        json={
            "query": "SELECT count(*) AS n FROM sys_invocation WHERE target_service_name ="
            f" 'OrderFulfilment' AND target_handler_name = 'run'{where}"
        },
        headers={"accept": "application/json"},
        timeout=30,
    )
    response.raise_for_status()
    return int(response.json()["rows"][0]["n"])


def backlog(stack: Stack, rate: float, seconds: float) -> dict[str, float]:
    """wrk offers `rate` orders/s for `seconds`; then wait until every accepted order is done."""
    accepted_before, completed_before = runs(stack), runs(stack, "completed")
    connections = 64
    started = time.monotonic()
    output = wrk(
        f"{stack.gateway_url}/api/orders",
        connections,
        seconds,
        post_script(ORDER, delay_ms=connections * 1000 / rate),
    )
    sent, refused = wrk_counts(output)
    accepted = runs(stack) - accepted_before
    done, last_change, last_done = 0, time.monotonic(), 0
    while done < accepted and time.monotonic() - last_change < 60:
        time.sleep(0.5)
        done = runs(stack, "completed") - completed_before
        if done != last_done:
            last_change, last_done = time.monotonic(), done
    return {
        "offered/s": sent / seconds,
        "accepted": accepted,
        "shed": refused,
        "completed": done,
        "completion/s": done / (last_change - started),
    }


# ---- the run ---------------------------------------------------------------------------------


def start_noop(stack: Stack, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, **stack.shared_env(), "PORT": str(port), "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, str(HERE / "noop_service.py")], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        services = httpx.get(f"{stack.admin_url}/services", timeout=5).json()["services"]
        if any(s["name"] == "Relay" for s in services):
            return process
        time.sleep(0.25)
    raise TimeoutError("the no-op service did not register")


def floor_of(
    stack: Stack, noop_pid: int, target: str, seconds: float
) -> tuple[float, float, float, float]:
    """One of the no-op service's handlers through the ingress: calls/s at 32 connections,
    the CPU ms per call of Restate and of the service, and the p50 at one connection."""
    url, restate = f"{stack.ingress_url}/{target}", int(stack.ctl("pid", "restate").strip())
    before = cpu_seconds(restate), cpu_seconds(noop_pid)
    output = wrk(url, 32, seconds, post_script(b"{}"))
    calls = wrk_counts(output)[0]
    engine, service = (cpu_seconds(restate) - before[0]), (cpu_seconds(noop_pid) - before[1])
    p50 = wrk_ms(wrk(url, 1, 5, post_script(b"{}"), latency=True), "50%")
    return wrk_rate(output), engine * 1000 / calls, service * 1000 / calls, p50


def restock(stack: Stack) -> None:
    """Stock enough of what the bench orders never to run out."""
    admin = {"Authorization": f"Bearer {stack.shared_env()['ADMIN_TOKEN']}"}
    httpx.put(
        f"{stack.gateway_url}/api/admin/products/sticker-pack/stock",
        json={"quantity": 10_000_000},
        headers=admin,
    ).raise_for_status()


def measure(
    stack: Stack, noop_pid: int, skeleton_pids: dict[str, int], args: argparse.Namespace
) -> None:
    restock(stack)
    floor, engine, service, floor_p50 = floor_of(stack, noop_pid, "Noop/call", args.floor_seconds)
    print(
        f"no-op handler: {floor:.0f} calls/s at 32 connections (CPU per call: Restate"
        f" {engine:.2f} ms, service {service:.2f} ms); p50 {floor_p50:.2f} ms at 1"
    )
    relay, engine, service, relay_p50 = floor_of(stack, noop_pid, "Relay/call", args.floor_seconds)
    print(
        f"  a handler calling it once through Restate: {relay:.0f} calls/s (CPU per call:"
        f" Restate {engine:.2f} ms, service {service:.2f} ms); p50 {relay_p50:.2f} ms at 1:"
        f" each call between services adds {relay_p50 - floor_p50:.2f} ms to a path"
    )
    restate = int(stack.ctl("pid", "restate").strip())
    skeleton_cpu = Cpu({"restate": restate, **skeleton_pids})
    cpu = Cpu.of(stack, [p for p in stack.programs() if p not in ONE_SHOTS])
    bare, bare_p50, rate, p50 = asyncio.run(
        the_orders(stack, args, floor, floor_p50, (skeleton_cpu, cpu))
    )
    result = backlog(stack, 3 * rate, args.overload_seconds)
    drained = result["completion/s"] / rate
    print(
        f"open loop at 3x ({result['offered/s']:.0f} orders/s offered for"
        f" {args.overload_seconds:g}s): {result['accepted']:.0f} accepted,"
        f" {result['shed']:.0f} shed; the backlog completed at {result['completion/s']:.1f}"
        f" orders/s = {drained:.2f}x the closed-loop rate ({result['completed']:.0f} completed)"
    )
    print(
        f"RATIO shop/skeleton throughput={rate / bare:.2f} p50={p50 / bare_p50:.2f}"
        f" skeleton/noop throughput={bare / floor:.3f} backlog={drained:.2f}"
    )


class Tally:
    """A closed loop's figures, summed over its rounds."""

    def __init__(self, source: "Shop | Skeleton", cpu: Cpu) -> None:
        self.source, self.cpu = source, cpu
        self.seconds = 0.0
        self.latencies: list[float] = []
        self.in_time: list[float] = []
        self.used: defaultdict[str, float] = defaultdict(float)  # CPU seconds by process

    async def round(self, clients: int, seconds: float) -> None:
        before = self.cpu.read()
        self.latencies += await closed_loop(self.source, clients, seconds, self.in_time)
        self.seconds += seconds
        for name, spent in self.cpu.read().items():
            self.used[name] += spent - before[name]

    @property
    def rate(self) -> float:
        """Orders done within the rounds' time: the tails (the last orders, each client's
        ending after the deadline) would count a slower order's idle wind-down against it."""
        return len(self.in_time) / self.seconds

    def per_order(self) -> dict[str, float]:
        """ms of CPU per order of each process, the largest first."""
        largest_first = sorted(self.used.items(), key=lambda used: used[1], reverse=True)
        return {n: s * 1000 / len(self.latencies) for n, s in largest_first}

    def figures(self) -> str:
        p50, p99 = pct(self.latencies, 50) * 1000, pct(self.latencies, 99) * 1000
        return f"p50 {p50:.0f} ms, p99 {p99:.0f} ms"


async def the_orders(
    stack: Stack, args: argparse.Namespace, floor: float, floor_p50: float, cpus: tuple[Cpu, Cpu]
) -> tuple[float, float, float, float]:
    """The skeleton's and the shop's unloaded p50 and closed-loop orders/s, measured side by
    side (orders one by one in turn; the closed loop in alternating rounds), so that this
    machine's drifting speed moves both alike; then the shop's book lag and half load.
    Returns (skeleton orders/s, skeleton p50 ms, shop orders/s, shop p50 ms)."""
    async with client_session() as session:
        shop, bare = Shop(stack, session), Skeleton(stack, session)
        for source in (bare, shop):
            await closed_loop(source, 4, 2)  # warm up: connections, imports, registrations
        one_by_one: dict[str, list[float]] = {"skeleton": [], "shop": []}
        for _ in range(args.unloaded):
            for name, source in (("skeleton", bare), ("shop", shop)):
                if taken := await source.order():
                    one_by_one[name].append(taken * 1000)
        bare_p50, p50 = (statistics.median(one_by_one[n]) for n in ("skeleton", "shop"))
        print(
            f"unloaded, one at a time in turn (to the outcome): skeleton order p50"
            f" {bare_p50:.1f} ms = {bare_p50 / floor_p50:.1f}x the no-op p50; shop order"
            f" (POST to the gateway) p50 {p50:.1f} ms = {p50 / bare_p50:.2f}x the skeleton's"
        )

        bare_loop, shop_loop = Tally(bare, cpus[0]), Tally(shop, cpus[1])
        shop.done.clear()
        for _ in range(args.rounds):
            for loop in (bare_loop, shop_loop):
                await loop.round(args.clients, args.seconds / args.rounds)
        print(
            f"closed loop, {args.clients} clients, {args.rounds} rounds of each in turn"
            f" ({args.seconds:g}s each in all):"
        )
        used = ", ".join(f"{n} {ms:.1f}" for n, ms in bare_loop.per_order().items())
        print(
            f"  skeleton: {bare_loop.rate:.1f} orders/s = {bare_loop.rate / floor:.3f}x the"
            f" no-op calls/s; {bare_loop.figures()}; CPU per order (ms): {used}"
        )
        rate = shop_loop.rate
        print(
            f"  shop: {rate:.1f} orders/s = {rate / bare_loop.rate:.2f}x the skeleton's ="
            f" {rate / floor:.3f}x the no-op calls/s; {shop_loop.figures()} ({shop.shed} shed)"
        )
        per_order = shop_loop.per_order()
        providers = {name: per_order.pop(name) for name in PROVIDERS}
        ours = ", ".join(f"{n} {ms:.1f}" for n, ms in per_order.items())
        beside = ", ".join(f"{n} {ms:.1f}" for n, ms in providers.items())
        print(f"  shop CPU per order (ms): {ours}; beside it, the emulated providers: {beside}")
        lags = await asyncio.to_thread(book_lag, stack, dict(shop.done))
        print(
            f"  the order book's lag (outcome at the client -> final row in the book) over"
            f" those {len(lags)} orders: p50 {pct(lags, 50):.1f} ms, p99 {pct(lags, 99):.1f} ms"
        )

        half = await fixed_rate(shop, rate / 2, args.seconds)
        h50, h99 = pct(half, 50) * 1000, pct(half, 99) * 1000
        print(
            f"half load ({rate / 2:.1f} orders/s offered): p50 {h50:.0f} ms, p99 {h99:.0f} ms"
            f" = {h99 / h50:.1f}x p50"
        )
    return bare_loop.rate, bare_p50, rate, p50


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="closed-loop clients")
    parser.add_argument("--seconds", type=float, default=20, help="closed-loop duration")
    parser.add_argument("--rounds", type=int, default=2, help="closed-loop rounds of each")
    parser.add_argument("--overload-seconds", type=float, default=30)
    parser.add_argument("--floor-seconds", type=float, default=10)
    parser.add_argument("--unloaded", type=int, default=50, help="orders placed one by one")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="shop-bench-") as state:
        ports = Ports.free()
        stack = Stack(
            state=Path(state),
            ports=ports,
            service_env={"CANCEL_WINDOW_SECONDS": "0", **NO_CLIENT_LIMITS},
        )
        with stack.running(timeout=120):
            noop = start_noop(stack, Ports.free().fulfilment)
            bare = skeleton.start(stack)
            try:
                pids = {f"skeleton {r}": p.pid for r, p in zip(skeleton.ROLES, bare, strict=True)}
                measure(stack, noop.pid, pids, args)
            finally:
                skeleton.stop([noop, *bare])


if __name__ == "__main__":
    main()
