"""Helpers of the Stripe emulator's tests: the emulator in-process on a free port, and a tiny
webhook endpoint that records what it is sent."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe
import uvicorn
from fastapi import FastAPI

from shop.dev.eventually import eventually
from shop.dev.stack import free_port


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """The app on a free port until the end of the block; its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    eventually(lambda: server.started, 10, every=0.01, what="the app listening")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


def stripe_client(base: str) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_unit", base_addresses={"api": base}, max_network_retries=0)


@dataclass
class Delivery:
    at: float
    body: str
    signature: str


@dataclass
class Receiver:
    """A webhook endpoint: records each POST; answers the next `fail_next` with 500 and each
    after `delay` seconds."""

    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    fail_next: int = 0
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[str]:
        with self.lock:
            return [d.body for d in self.deliveries]

    def wait_for(self, count: int, timeout: float = 10) -> list[Delivery]:
        """Until at least `count` deliveries came (acknowledged or not); all of them."""

        def arrived() -> list[Delivery] | None:
            with self.lock:
                return list(self.deliveries) if len(self.deliveries) >= count else None

        return eventually(arrived, timeout, every=0.02, what=f"{count} webhook deliveries")

    def of_type(self, type_: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if json.loads(d.body)["type"] == type_]


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            if receiver.delay:  # a slow endpoint, on purpose
                time.sleep(receiver.delay)
            with receiver.lock:
                receiver.deliveries.append(
                    Delivery(time.time(), body, self.headers.get("Stripe-Signature", ""))
                )
                failing = receiver.fail_next > 0
                receiver.fail_next -= failing
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/stripe"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook endpoint for one test."""
    with receiving() as r:
        yield r


@pytest.fixture
def second_receiver() -> Iterator[Receiver]:
    """Another one, for a test that moves the emulator from one endpoint to the other."""
    with receiving() as r:
        yield r


@pytest.fixture(scope="session")
def serve() -> Any:
    """`with serve(app) as base_url:` (test modules cannot import this file)."""
    return serving


@pytest.fixture(scope="session")
def client_for() -> Any:
    return stripe_client
