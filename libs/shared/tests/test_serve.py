import asyncio
import http.server
import json
import logging
import socket
import threading

import pytest

from shop.shared.serve import RequestSigningMisconfigured, register, restate_app
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
