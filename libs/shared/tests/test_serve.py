import asyncio
import http.server
import json
import logging
import socket
import threading

import httpx
import pytest
from hypercorn.asyncio import serve as hypercorn_serve

from shop.shared.serve import RequestSigningMisconfigured, register, restate_app, server_config
from shop.shared.settings import ServiceSettings

KEY = "publickeyv1_FAe4sisG95oZ42w7buUn5qEE4TAnfTTFPiguZUHmhiF"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch) -> None:
    monkeypatch.setenv("PORT", "9082")
    monkeypatch.delenv("RESTATE_IDENTITY_KEYS", raising=False)
    monkeypatch.delenv("SHOP_DEV_MODE", raising=False)


def test_a_service_without_identity_keys_refuses_to_start() -> None:
    with pytest.raises(RequestSigningMisconfigured, match="RESTATE_IDENTITY_KEYS is not set"):
        restate_app([], ServiceSettings())


def test_dev_mode_without_keys_accepts_unsigned_requests_loudly(monkeypatch, caplog) -> None:
    monkeypatch.setenv("SHOP_DEV_MODE", "true")
    with caplog.at_level(logging.WARNING):
        restate_app([], ServiceSettings())
    assert "UNSIGNED" in caplog.text


def test_keys_are_checked_at_startup(monkeypatch) -> None:
    monkeypatch.setenv("RESTATE_IDENTITY_KEYS", KEY)
    restate_app([], ServiceSettings())
    monkeypatch.setenv("RESTATE_IDENTITY_KEYS", f"{KEY},publickeyv1_0OIl")  # not base58
    with pytest.raises(RequestSigningMisconfigured, match="rejects"):
        restate_app([], ServiceSettings())


class Admin(http.server.BaseHTTPRequestHandler):
    """A Restate admin API that takes any deployment."""

    bodies: list[dict[str, object]] = []

    def do_POST(self) -> None:
        Admin.bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        answer = b'{"services": [{"name": "Payments"}]}'
        self.send_response(201)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


async def test_registration_goes_to_the_next_admin_url_when_one_is_down(monkeypatch) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Admin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as down:
        down.bind(("127.0.0.1", 0))  # bound, not listening: refuses connections
        urls = f"http://127.0.0.1:{down.getsockname()[1]}, http://127.0.0.1:{server.server_port}"
        monkeypatch.setenv("RESTATE_ADMIN_URL", urls)
        try:
            await asyncio.wait_for(register(ServiceSettings()), timeout=10)
        finally:
            server.shutdown()
            server.server_close()
    assert Admin.bodies == [{"uri": "http://127.0.0.1:9082", "force": False}]


async def test_one_http2_connection_carries_any_number_of_requests() -> None:
    """Restate sends every invocation of a deployment over one HTTP/2 connection: a server
    that closes it after N requests strands the invocations in flight on it."""
    connections: set[int] = set()

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        connections.add(scope["client"][1])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stop = asyncio.Event()
    server = asyncio.create_task(
        hypercorn_serve(app, server_config(f"127.0.0.1:{port}"), shutdown_trigger=stop.wait)
    )
    try:
        async with httpx.AsyncClient(http1=False, http2=True) as client:
            async with asyncio.timeout(10):  # until it listens
                while True:
                    try:
                        await client.get(f"http://127.0.0.1:{port}/")
                        break
                    except httpx.ConnectError:
                        await asyncio.sleep(0.05)
            for _ in range(12):  # 1,200 requests, 100 at a time (hypercorn's default cap: 1,000)
                replies = await asyncio.gather(
                    *(client.get(f"http://127.0.0.1:{port}/") for _ in range(100))
                )
                assert all(r.status_code == 200 for r in replies)
    finally:
        stop.set()
        await server
    assert len(connections) == 1
