"""What every call to the emulator's API (`/v1/...`) passes before its route, outermost first:
the faults a test switched on (a flaky network, a struggling Stripe), the API key, and
`Idempotency-Key` replay, as Stripe keeps a key's first answer for 24 hours.

Plain ASGI: as two of Starlette's BaseHTTPMiddleware (every call through an anyio task group
and memory streams) this was a quarter of the emulator's CPU per order in bench/orders.py,
CPU it takes from the shop on the bench's shared cores (Stripe's own servers would not).
"""

import asyncio
import hashlib
import json
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shop.dev.stripe_ledger import Ledger
from shop.dev.stripe_params import StripeError


class Dropped(Exception):
    """Raised mid-response so the server closes the connection without a complete answer."""


async def drop(send: Send) -> None:
    """Start an answer and break off: the client sees its connection die mid-response."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b'{"', "more_body": True})
    raise Dropped("emulated dropped connection")


async def read_body(receive: Receive) -> bytes:
    """The request's body; ClientDisconnect when the client has gone (uvicorn says so even
    when the body had arrived), so that no answer is kept for a key on a body never read."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def ignore(_: Message) -> None:
    pass


class StripeFront:
    def __init__(self, app: ASGIApp, ledger: Ledger) -> None:
        self.app, self.ledger = app, ledger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        f, post = self.ledger.faults, scope["method"] == "POST"
        if f.latency_next:
            f.latency_next -= 1
            await asyncio.sleep(f.latency_ms / 1000)
        if f.fail_next and post:
            f.fail_next -= 1
            await StripeError(500, "api_error", "emulated outage").response()(scope, receive, send)
        elif f.drop_next and post:  # the call is made (and kept), its answer lost on the way
            f.drop_next -= 1
            await self.keyed(scope, receive, ignore)
            await drop(send)
        else:
            await self.keyed(scope, receive, send)

    async def keyed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The API key checked, and a POST with an Idempotency-Key answered once: the same
        request again gets the first answer (replayed), a different one an error."""
        headers = Headers(scope=scope)
        if not headers.get("authorization", "").startswith("Bearer sk_"):
            refused = StripeError(401, "invalid_request_error", "Invalid API Key provided.")
            await refused.response()(scope, receive, send)
            return
        key = headers.get("idempotency-key")
        if scope["method"] != "POST" or not key:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        fingerprint = hashlib.sha256(scope["path"].encode() + b"?" + body).hexdigest()
        ledger = self.ledger
        async with ledger.key_locks[key]:
            if key in ledger.replies:
                seen, status, reply = ledger.replies[key]
                if seen != fingerprint:
                    answer = StripeError(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same "
                        f"parameters they were first used with. Key: {key}",
                    ).response()
                else:
                    replayed = {"Idempotent-Replayed": "true", "Idempotency-Key": key}
                    answer = JSONResponse(reply, status_code=status, headers=replayed)
            else:
                status, reply = await self.first_answer(scope, body, receive)
                if status < 500:  # Stripe does not keep answers to its own failures
                    ledger.keep_reply(key, fingerprint, status, reply)
                answer = JSONResponse(reply, status_code=status, headers={"Idempotency-Key": key})
        await answer(scope, receive, send)

    async def first_answer(self, scope: Scope, body: bytes, receive: Receive) -> tuple[int, Any]:
        """The route's answer to the request (whose body was read already): status, JSON."""
        unread = [{"type": "http.request", "body": body, "more_body": False}]
        status, chunks = 500, []

        async def replay() -> Message:
            return unread.pop() if unread else await receive()  # then: the client's own

        async def keep(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, replay, keep)
        return status, json.loads(b"".join(chunks))
