"""The gateway's client for a Restate cluster: another node when one cannot be reached."""

import http.server
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from shop.gateway.restate_ingress import Failover, restate_client

NODES = ["http://node-1:8080", "http://node-2:8080", "http://node-3:8080"]


def cluster(down: set[str], sent: list[str], fail: type[httpx.TransportError] = httpx.ConnectError):
    """Nodes by host name; those in `down` refuse connections. `sent` records each try."""

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.host)
        if request.url.host in down:
            raise fail("connection refused", request=request)
        return httpx.Response(200, json={"node": request.url.host, "host": request.headers["host"]})

    return httpx.MockTransport(handle)


async def test_a_node_that_refuses_is_skipped_and_the_next_one_kept() -> None:
    sent: list[str] = []
    transport = Failover(NODES, cluster({"node-1"}, sent))
    async with httpx.AsyncClient(base_url=NODES[0], transport=transport) as client:
        first = await client.post("/OrderFulfilment/o1/run/send", json={"a": 1})
        second = await client.get("/restate/health")
    assert first.json() == {"node": "node-2", "host": "node-2:8080"}
    assert second.json()["node"] == "node-2"
    assert sent == ["node-1", "node-2", "node-2"]  # the node that answered is kept
    assert str(first.request.url) == "http://node-2:8080/OrderFulfilment/o1/run/send"


async def test_a_connect_timeout_fails_over_too() -> None:
    sent: list[str] = []
    transport = Failover(NODES, cluster({"node-1", "node-2"}, sent, httpx.ConnectTimeout))
    async with httpx.AsyncClient(base_url=NODES[0], transport=transport) as client:
        assert (await client.get("/restate/health")).json()["node"] == "node-3"


async def test_every_node_down_is_the_last_error() -> None:
    sent: list[str] = []
    transport = Failover(NODES, cluster({httpx.URL(u).host for u in NODES}, sent))
    async with httpx.AsyncClient(base_url=NODES[0], transport=transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/restate/health")
    assert sent == ["node-1", "node-2", "node-3"]


async def test_a_request_cut_off_midway_is_not_sent_again() -> None:
    sent: list[str] = []
    transport = Failover(NODES, cluster({"node-1"}, sent, httpx.ReadError))
    async with httpx.AsyncClient(base_url=NODES[0], transport=transport) as client:
        with pytest.raises(httpx.ReadError):
            await client.post("/OrderKeys/k/start", json={})
    assert sent == ["node-1"]


class Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def node_up() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_a_real_refused_port_fails_over_to_a_listening_node(node_up: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        node_down = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: refused
        async with restate_client([node_down, node_up], httpx.Timeout(5)) as client:
            response = await client.get("/restate/health")
    assert response.text == "ok"
    assert str(response.request.url) == f"{node_up}/restate/health"


def test_one_url_is_a_plain_client() -> None:
    client = restate_client(["http://127.0.0.1:8080"], httpx.Timeout(1))
    assert not isinstance(client._transport, Failover)
    assert client.base_url == "http://127.0.0.1:8080"
