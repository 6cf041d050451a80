"""Inventory under concurrent changes of one SKU, against a real Restate server and the real
inventory service (`python -m shop.inventory`, as the stack runs it): reserves, releases,
commits and restocks at once through the ingress keep `stocked = available + reserved + sold`
at every step and never sell what is not there. Once on a normal server and once on one that
replays every step (ids `[normal]`, `[replay]`).

Reserve, release and commit are private to the ingress (only the workflow calls them): they go
through the harness's relay, a service that calls them through Restate as the workflow does.
"""

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shop.dev.restate_harness import MODES, relay, restate_harness
from shop.shared.catalog import CATALOG
from shop.shared.contracts.inventory import ReservationResult, StockLevel

ORDERS = 60  # each reserves 1-3, then releases, commits or keeps its reservation
RESTOCKS = 6
SEED = 27


class Shop:
    """The ingress, as the workflow (through the relay) and an operator (restock) use it."""

    def __init__(self, ingress_url: str, admin_token: str) -> None:
        self.ingress_url, self.admin_token = ingress_url, admin_token
        self.levels: list[StockLevel] = []  # every level a handler answered, for the checks

    def client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        return httpx.AsyncClient(base_url=self.ingress_url, timeout=30, limits=limits)

    async def private(
        self, client: httpx.AsyncClient, handler: str, sku: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        call = {"service": "Inventory", "handler": handler, "key": sku, "body": body}
        response = await client.post("/HarnessRelay/call", json=call)
        response.raise_for_status()
        return response.json()

    async def reserve(
        self, client: httpx.AsyncClient, sku: str, order_id: str, quantity: int
    ) -> ReservationResult | None:
        """The reservation, or None when out of stock."""
        reply = await self.private(
            client, "reserve", sku, {"order_id": order_id, "quantity": quantity}
        )
        if not reply["ok"]:
            assert reply["status_code"] == 409, reply
            assert reply["error"].startswith(f"out of stock: {sku} has "), reply
            return None
        return ReservationResult.model_validate(reply["body"])

    async def settle(
        self, client: httpx.AsyncClient, handler: str, sku: str, order_id: str
    ) -> StockLevel:
        reply = await self.private(client, handler, sku, {"order_id": order_id})
        assert reply["ok"], reply
        return self.seen(reply["body"])

    async def restock(self, client: httpx.AsyncClient, sku: str, quantity: int) -> StockLevel:
        body = {"quantity": quantity, "operator_token": self.admin_token}
        response = await client.post(f"/Inventory/{sku}/restock", json=body)
        assert response.is_success, response.text
        return self.seen(response.json())

    async def level(self, client: httpx.AsyncClient, sku: str) -> StockLevel:
        response = await client.post(f"/Inventory/{sku}/get")
        assert response.is_success, response.text
        return self.seen(response.json())

    def seen(self, body: Any) -> StockLevel:
        level = StockLevel.model_validate(body)
        self.levels.append(level)
        return level


def conserved(level: StockLevel) -> bool:
    return (
        level.stocked == level.available + level.reserved + level.sold
        and min(level.available, level.reserved, level.sold) >= 0
    )


@pytest.fixture(scope="module", params=sorted(MODES))
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    state = tmp_path_factory.mktemp(f"inventory-{request.param}")
    with restate_harness(state, request.param) as harness:
        harness.start_service("inventory", registers=["Inventory"])
        harness.serve([relay])
        harness.ready()
        yield Shop(harness.ingress_url, harness.stack.shared_env()["ADMIN_TOKEN"])


async def test_concurrent_reserves_never_oversell(shop: Shop) -> None:
    sku, stock = "poster-a2", 10
    async with shop.client() as client:
        await shop.restock(client, sku, stock)
        orders = [f"poster-{n}" for n in range(4 * stock)]
        # Every order at once, and the first five twice more (a retried reserve).
        asks = [*orders, *orders[:5], *orders[:5]]
        replies = await asyncio.gather(*(shop.reserve(client, sku, o, 1) for o in asks))
        level = await shop.level(client, sku)
    held = {r.order_id: r.quantity for r in replies if r is not None}
    assert len(held) == stock, held
    assert all(r.available >= 0 for r in replies if r is not None)
    # A retried reserve holds what the first one took, no more.
    assert all(q == 1 for q in held.values())
    assert level == StockLevel(sku=sku, available=0, reserved=stock, sold=0, stocked=stock)


async def test_reserve_release_commit_restock_at_once_keep_stock_conserved(shop: Shop) -> None:
    sku, rng = "cap-navy", random.Random(SEED)
    assert sku in CATALOG
    held: dict[str, int] = {}  # reserved and neither released nor committed
    sold: dict[str, int] = {}
    taken: list[ReservationResult] = []

    async def order(client: httpx.AsyncClient, n: int) -> None:
        order_id, quantity = f"cap-{n}", rng.randint(1, 3)
        fate = rng.choice(["release", "commit", "keep"])
        reservation = await shop.reserve(client, sku, order_id, quantity)
        if reservation is None:
            # Out of stock: the workflow releases anyway (a no-op for an order holding none).
            await shop.settle(client, "release", sku, order_id)
            return
        taken.append(reservation)
        if fate == "keep":
            held[order_id] = quantity
            return
        await shop.settle(client, fate, sku, order_id)
        # A retried (or replayed) settle changes nothing: the reservation is gone.
        await shop.settle(client, fate, sku, order_id)
        if fate == "commit":
            sold[order_id] = quantity

    async def restock(client: httpx.AsyncClient) -> None:
        await asyncio.sleep(rng.uniform(0, 0.5))  # lands among the orders
        await shop.restock(client, sku, rng.randint(0, 15))

    async with shop.client() as client:
        start = await shop.restock(client, sku, 20)
        await asyncio.gather(
            *(order(client, n) for n in range(ORDERS)),
            *(restock(client) for _ in range(RESTOCKS)),
            *(shop.level(client, sku) for _ in range(10)),
        )
        level = await shop.level(client, sku)
        assert level.reserved == sum(held.values()), (level, held)
        assert level.sold == sum(sold.values()), (level, sold)
        # No oversell: what was taken and not given back never exceeds what was stocked.
        assert all(r.available >= 0 for r in taken)
        assert level.reserved + level.sold <= level.stocked
        # Every level any handler answered (and read in between) was conserved.
        bad = [seen for seen in shop.levels if not conserved(seen)]
        assert not bad, bad
        # Then the held orders let go: nothing reserved, everything accounted for.
        await asyncio.gather(*(shop.settle(client, "release", sku, o) for o in held))
        end = await shop.level(client, sku)
    assert conserved(end) and end.reserved == 0 and end.sold == level.sold
    assert end.available == level.available + level.reserved
    assert start.available == 20 and taken
