"""One client cannot close the shop for the others: orders placed per client address (a burst,
then a steady rate), live-progress streams per client and per order. Runs a stack of its own
with small limits; the gateway trusts X-Forwarded-For from 127.0.0.1 (uvicorn's default, as a
front proxy there would set it), which is how these tests are several clients."""

from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from shop.dev.stack import Ports, Stack

from .helpers import customer, eventually

ORDERS_PER_MINUTE = 6  # a burst of 2, then one every 10 s
STREAMS_PER_CLIENT, STREAMS_PER_ORDER = 3, 2
STICKERS = [{"product_id": "sticker-pack", "quantity": 1}]


@pytest.fixture(autouse=True)
def invariants() -> None:
    """A stack of its own: its orders wait in a long cancellation window, then are cancelled."""


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        state=tmp_path_factory.mktemp("client-limits"),
        ports=Ports.free(),
        service_env={
            "CANCEL_WINDOW_SECONDS": "600",  # orders stay open while their streams are counted
            "ORDERS_PER_CLIENT_PER_MINUTE": str(ORDERS_PER_MINUTE),
            "STREAMS_PER_CLIENT": str(STREAMS_PER_CLIENT),
            "STREAMS_PER_ORDER": str(STREAMS_PER_ORDER),
        },
    )
    with stack.running(timeout=90):
        yield stack


def as_client(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def place(gateway: httpx.Client, address: str) -> httpx.Response:
    body = {"customer_email": customer(), "items": STICKERS}
    return gateway.post("/api/orders", json=body, headers=as_client(address))


def test_one_client_gets_its_share_of_orders_and_the_others_theirs(limited: Stack) -> None:
    with httpx.Client(base_url=limited.gateway_url, timeout=30) as gateway:
        burst = [place(gateway, "203.0.113.1") for _ in range(2)]
        assert [r.status_code for r in burst] == [202, 202], [r.text for r in burst]
        refused = place(gateway, "203.0.113.1")
        assert refused.status_code == 429, refused.text
        assert "from your address" in refused.json()["error"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 10
        form = {"customer_email": customer(), "qty.sticker-pack": "1"}
        page = gateway.post("/orders", data=form, headers=as_client("203.0.113.1"))
        assert page.status_code == 429 and "from your address" in page.text
        assert place(gateway, "203.0.113.2").status_code == 202  # another customer: served


def test_streams_are_capped_per_order_and_per_client_and_given_back(limited: Stack) -> None:
    with httpx.Client(base_url=limited.gateway_url, timeout=30) as gateway:
        orders = [place(gateway, f"198.51.100.{n}").json()["order_id"] for n in range(1, 4)]
        with ExitStack() as streams:

            def follow(order_id: str, address: str) -> httpx.Response:
                url = f"/api/orders/{order_id}/events"
                request = gateway.build_request("GET", url, headers=as_client(address))
                response = gateway.send(request, stream=True)
                streams.callback(response.close)
                return response

            # Per order: two streams, from anyone; the third is refused.
            held = [follow(orders[0], "192.0.2.1"), follow(orders[0], "192.0.2.2")]
            assert [r.status_code for r in held] == [200, 200]
            third = follow(orders[0], "192.0.2.3")
            assert third.status_code == 429 and "of this order" in third.read().decode()
            # Per client: three streams in all; the fourth is refused.
            mine = [follow(o, "192.0.2.9") for o in (orders[1], orders[1], orders[2])]
            assert [r.status_code for r in mine] == [200, 200, 200]
            fourth = follow(orders[2], "192.0.2.9")
            assert fourth.status_code == 429 and "from your address" in fourth.read().decode()
            # A stream that ends gives its place back.
            held[0].close()
            eventually(lambda: follow(orders[0], "192.0.2.3").status_code == 200, timeout=10)
        for order_id in orders:  # leave nothing waiting in the window
            admin = {"Authorization": f"Bearer {limited.shared_env()['ADMIN_TOKEN']}"}
            gateway.post(f"/api/admin/orders/{order_id}/cancel", headers=admin)
