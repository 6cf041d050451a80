"""A Stripe-compatible emulator for dev and tests (Stripe itself is unreachable here).

It speaks the part of Stripe's API the shop uses, through the official SDK: PaymentIntents
(create, confirm, capture, cancel, retrieve, list with a metadata filter), Refunds (create,
list by payment_intent), lists paged as Stripe pages them (newest first, `limit`,
`starting_after`, `ending_before`, `has_more`), `Idempotency-Key` replay, and the test payment
methods `pm_card_visa` (succeeds) and `pm_card_chargeDeclined` (402 card_declined).

The ledger (PaymentIntents, Refunds, the answers kept for idempotency keys) is in memory, or
with `--ledger PATH` (or STRIPE_EMULATOR_LEDGER) also in an SQLite file, read back on start:
the dev stack keeps it in its state folder, so charges outlive a restart like the rest.
"""

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from shop.dev.stripe_forms import decode

GOOD_CARDS = {"pm_card_visa", "pm_card_mastercard", "pm_card_amex"}
DECLINED_CARDS = {"pm_card_chargeDeclined": "generic_decline"}


class StripeError(Exception):
    def __init__(self, status: int, type_: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.body = status, {"type": type_, "message": message, **extra}


class Faults(BaseModel):
    """Switchable faults for the next calls to /v1 (tests set them through /_emulator/faults)."""

    fail_next: int = Field(0, ge=0, description="answer 500 without doing anything")
    drop_next: int = Field(0, ge=0, description="do the work, then drop the connection unanswered")
    latency_next: int = Field(0, ge=0, description="delay these many calls by latency_ms")
    latency_ms: int = Field(0, ge=0)


class LedgerFile:
    """The ledger on disk: one row per object and per idempotency key, written as each
    changes (SQLite in WAL mode: a crash of the emulator loses nothing it answered)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Each statement commits. Opened where the app is made, used on the server's loop.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS objects (id TEXT PRIMARY KEY, body TEXT)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, fingerprint TEXT, "
            "status INTEGER, body TEXT)"
        )

    def objects(self) -> list[dict[str, Any]]:
        """Every object, in the order they were first written (rowid)."""
        rows = self.db.execute("SELECT body FROM objects ORDER BY rowid")
        return [json.loads(body) for (body,) in rows]

    def replies(self) -> dict[str, tuple[str, int, dict[str, Any]]]:
        rows = self.db.execute("SELECT key, fingerprint, status, body FROM replies")
        return {key: (seen, status, json.loads(body)) for key, seen, status, body in rows}

    def put(self, obj: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO objects (id, body) VALUES (?, ?) "
            "ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            (obj["id"], json.dumps(obj)),
        )

    def put_reply(self, key: str, fingerprint: str, status: int, body: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)",
            (key, fingerprint, status, json.dumps(body)),
        )


class Ledger:
    """Everything the emulator has recorded: in memory, and in `path` when given."""

    def __init__(self, path: Path | None = None) -> None:
        self.faults = Faults()
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        # idempotency key -> (request fingerprint, status, body), as Stripe keeps them
        self.replies: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self.key_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.file = LedgerFile(path) if path else None
        if self.file:
            for obj in self.file.objects():
                kind = self.intents if obj["object"] == "payment_intent" else self.refunds
                kind[obj["id"]] = obj
            self.replies = self.file.replies()

    def save(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Record a new or changed object (on disk too); returns it."""
        if self.file:
            self.file.put(obj)
        return obj

    def keep_reply(self, key: str, fingerprint: str, status: int, body: dict[str, Any]) -> None:
        self.replies[key] = (fingerprint, status, body)
        if self.file:
            self.file.put_reply(key, fingerprint, status, body)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def as_int(params: dict[str, Any], name: str) -> int:
    try:
        value = int(params[name])
    except KeyError:
        raise StripeError(
            400, "invalid_request_error", f"Missing required param: {name}.", param=name
        ) from None
    except ValueError:
        raise StripeError(
            400, "invalid_request_error", f"Invalid integer: {params[name]}", param=name
        ) from None
    if value < 1:
        raise StripeError(
            400, "invalid_request_error", f"Invalid {name}: must be at least 1", param=name
        )
    return value


def flag(params: dict[str, Any], name: str) -> bool:
    return str(params.get(name, "false")).lower() == "true"


def create_intent(ledger: Ledger, params: dict[str, Any]) -> dict[str, Any]:
    intent = {
        "id": new_id("pi"),
        "object": "payment_intent",
        "amount": as_int(params, "amount"),
        "amount_received": 0,
        "currency": str(params.get("currency", "")).lower() or _missing("currency"),
        "capture_method": params.get("capture_method", "automatic"),
        "created": int(time.time()),
        "description": params.get("description"),
        "metadata": params.get("metadata") or {},
        "payment_method": params.get("payment_method"),
        "payment_method_types": params.get("payment_method_types") or ["card"],
        "last_payment_error": None,
        "livemode": False,
        "status": "requires_payment_method",
    }
    if intent["payment_method"]:
        intent["status"] = "requires_confirmation"
    ledger.intents[intent["id"]] = intent
    try:
        if flag(params, "confirm"):
            confirm(intent, params)
    finally:  # a declined card leaves the intent changed too
        ledger.save(intent)
    return intent


def _missing(name: str) -> str:
    raise StripeError(400, "invalid_request_error", f"Missing required param: {name}.", param=name)


def confirm(intent: dict[str, Any], params: dict[str, Any]) -> None:
    method = params.get("payment_method") or intent["payment_method"]
    if intent["status"] not in {"requires_payment_method", "requires_confirmation"}:
        raise StripeError(
            400,
            "invalid_request_error",
            f"This PaymentIntent's status is {intent['status']} and cannot be confirmed.",
            code="payment_intent_unexpected_state",
        )
    if not method:
        raise StripeError(
            400,
            "invalid_request_error",
            "You must provide a payment_method.",
            param="payment_method",
        )
    intent["payment_method"] = method
    if method in DECLINED_CARDS:
        intent["status"] = "requires_payment_method"
        error = {
            "code": "card_declined",
            "decline_code": DECLINED_CARDS[method],
            "message": "Your card was declined.",
            "type": "card_error",
        }
        intent["last_payment_error"] = error
        raise StripeError(
            402,
            "card_error",
            error["message"],
            code="card_declined",
            decline_code=error["decline_code"],
            payment_intent=dict(intent),
        )
    if method not in GOOD_CARDS:
        raise StripeError(
            400,
            "invalid_request_error",
            f"No such PaymentMethod: '{method}'",
            code="resource_missing",
            param="payment_method",
        )
    if intent["capture_method"] == "manual":
        intent["status"] = "requires_capture"
    else:
        intent["status"], intent["amount_received"] = "succeeded", intent["amount"]


def get_intent(ledger: Ledger, intent_id: str) -> dict[str, Any]:
    if intent_id not in ledger.intents:
        raise StripeError(
            404,
            "invalid_request_error",
            f"No such payment_intent: '{intent_id}'",
            code="resource_missing",
            param="intent",
        )
    return ledger.intents[intent_id]


def capture(intent: dict[str, Any]) -> None:
    if intent["status"] != "requires_capture":
        raise StripeError(
            400,
            "invalid_request_error",
            "This PaymentIntent could not be captured because it has a status of "
            f"{intent['status']}.",
            code="payment_intent_unexpected_state",
        )
    intent["status"], intent["amount_received"] = "succeeded", intent["amount"]


def cancel(intent: dict[str, Any]) -> None:
    if intent["status"] in {"succeeded", "canceled"}:
        raise StripeError(
            400,
            "invalid_request_error",
            f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}.",
            code="payment_intent_unexpected_state",
        )
    intent["status"] = "canceled"


def refund(ledger: Ledger, params: dict[str, Any]) -> dict[str, Any]:
    intent = get_intent(ledger, str(params.get("payment_intent") or _missing("payment_intent")))
    if intent["status"] != "succeeded":
        raise StripeError(
            400,
            "invalid_request_error",
            "This PaymentIntent has no successful charge to refund.",
            code="charge_not_refundable",
        )
    refunded = sum(
        r["amount"] for r in ledger.refunds.values() if r["payment_intent"] == intent["id"]
    )
    amount = as_int(params, "amount") if "amount" in params else intent["amount"] - refunded
    if amount < 1 or refunded + amount > intent["amount"]:
        raise StripeError(
            400,
            "invalid_request_error",
            "Refund amount is greater than unrefunded amount.",
            code="charge_already_refunded",
        )
    item = {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "currency": intent["currency"],
        "payment_intent": intent["id"],
        "status": "succeeded",
        "created": int(time.time()),
        "metadata": params.get("metadata") or {},
    }
    ledger.refunds[item["id"]] = item
    return ledger.save(item)


class Dropped(Exception):
    """Raised mid-response so the server closes the connection without a complete answer."""


def dropped() -> Response:
    async def body():  # type: ignore[no-untyped-def]
        yield b'{"'
        raise Dropped("emulated dropped connection")

    return StreamingResponse(body(), status_code=200, media_type="application/json")


def page(
    url: str,
    objects: list[dict[str, Any]],
    wanted: Callable[[dict[str, Any]], bool],
    query: dict[str, Any],
) -> dict[str, Any]:
    """One page of a list, as Stripe answers it: newest first, at most `limit` (1 to 100,
    default 10) of the objects `wanted` selects; `starting_after=<id>` the ones after that
    object (older), `ending_before=<id>` the ones just before it (newer); `has_more` says
    whether there are more beyond the page in the direction of travel."""
    limit = list_limit(query)
    after, before = query.get("starting_after"), query.get("ending_before")
    if after and before:
        raise StripeError(
            400,
            "invalid_request_error",
            "You may only specify one of these parameters: ending_before, starting_after.",
        )
    # Newest first; objects made in the same second in the order they were made, newest first.
    ordered = sorted(reversed(objects), key=lambda o: o["created"], reverse=True)
    if after:
        ordered = ordered[cursor(ordered, after, "starting_after") + 1 :]
    elif before:
        ordered = ordered[: cursor(ordered, before, "ending_before")]
    selected = [o for o in ordered if wanted(o)]
    data = selected[-limit:] if before else selected[:limit]
    return {"object": "list", "url": url, "has_more": len(selected) > limit, "data": data}


def list_limit(query: dict[str, Any]) -> int:
    if "limit" not in query:
        return 10
    limit = as_int(query, "limit")
    if limit > 100:
        raise StripeError(
            400,
            "invalid_request_error",
            "Invalid limit: must be between 1 and 100.",
            param="limit",
        )
    return limit


def cursor(ordered: list[dict[str, Any]], object_id: Any, param: str) -> int:
    """Where the object a page starts after (or ends before) is in the list."""
    for index, obj in enumerate(ordered):
        if obj["id"] == object_id:
            return index
    raise StripeError(
        400,
        "invalid_request_error",
        f"No such object: '{object_id}'",
        code="resource_missing",
        param=param,
    )


def create_app(ledger_path: Path | None = None) -> FastAPI:
    app = FastAPI(title="Stripe emulator")
    ledger = Ledger(ledger_path)
    app.state.ledger = ledger

    @app.exception_handler(StripeError)
    async def stripe_error(_: Request, e: StripeError) -> JSONResponse:
        return JSONResponse({"error": e.body}, status_code=e.status)

    @app.middleware("http")
    async def auth_and_idempotency(request: Request, call_next):  # type: ignore[no-untyped-def]
        if not request.url.path.startswith("/v1/"):
            return await call_next(request)
        if not request.headers.get("authorization", "").startswith("Bearer sk_"):
            return JSONResponse(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "Invalid API Key provided.",
                    }
                },
                status_code=401,
            )
        key = request.headers.get("idempotency-key")
        if request.method != "POST" or not key:
            return await call_next(request)
        body = await request.body()
        fingerprint = hashlib.sha256(request.url.path.encode() + b"?" + body).hexdigest()
        async with ledger.key_locks[key]:
            if key in ledger.replies:
                seen, status, reply = ledger.replies[key]
                if seen != fingerprint:
                    return JSONResponse(
                        {
                            "error": {
                                "type": "idempotency_error",
                                "message": "Keys for idempotent requests can only be used "
                                "with the same parameters they were first used with. "
                                f"Key: {key}",
                            }
                        },
                        status_code=400,
                    )
                return JSONResponse(
                    reply,
                    status_code=status,
                    headers={"Idempotent-Replayed": "true", "Idempotency-Key": key},
                )
            response = await call_next(request)
            chunks = [chunk async for chunk in response.body_iterator]
            reply = json.loads(b"".join(chunks))
            if response.status_code < 500:  # Stripe does not keep answers to its own failures
                ledger.keep_reply(key, fingerprint, response.status_code, reply)
            return JSONResponse(
                reply, status_code=response.status_code, headers={"Idempotency-Key": key}
            )

    @app.middleware("http")
    async def faults(request: Request, call_next):  # type: ignore[no-untyped-def]
        """Outermost (added last): a flaky network or a struggling Stripe, as clients see it."""
        f = ledger.faults
        if not request.url.path.startswith("/v1/"):
            return await call_next(request)
        if f.latency_next:
            f.latency_next -= 1
            await asyncio.sleep(f.latency_ms / 1000)
        if f.fail_next and request.method == "POST":
            f.fail_next -= 1
            return JSONResponse(
                {"error": {"type": "api_error", "message": "emulated outage"}}, status_code=500
            )
        response = await call_next(request)
        if f.drop_next and request.method == "POST":
            f.drop_next -= 1
            return dropped()
        return response

    async def params_of(request: Request) -> dict[str, Any]:
        form = await request.form()
        return decode([(k, str(v)) for k, v in form.multi_items()])

    @app.post("/v1/payment_intents")
    async def create_payment_intent(request: Request) -> dict[str, Any]:
        return create_intent(ledger, await params_of(request))

    @app.get("/v1/payment_intents")
    async def list_payment_intents(request: Request) -> dict[str, Any]:
        query = decode(list(request.query_params.multi_items()))
        metadata = query.get("metadata") or {}

        def wanted(intent: dict[str, Any]) -> bool:
            return all(intent["metadata"].get(k) == v for k, v in metadata.items())

        return page("/v1/payment_intents", list(ledger.intents.values()), wanted, query)

    @app.get("/v1/payment_intents/{intent_id}")
    async def retrieve_payment_intent(intent_id: str) -> dict[str, Any]:
        return get_intent(ledger, intent_id)

    @app.post("/v1/payment_intents/{intent_id}/confirm")
    async def confirm_payment_intent(intent_id: str, request: Request) -> dict[str, Any]:
        intent = get_intent(ledger, intent_id)
        try:
            confirm(intent, await params_of(request))
        finally:  # a declined card changes the intent too
            ledger.save(intent)
        return intent

    @app.post("/v1/payment_intents/{intent_id}/capture")
    async def capture_payment_intent(intent_id: str) -> dict[str, Any]:
        intent = get_intent(ledger, intent_id)
        capture(intent)
        return ledger.save(intent)

    @app.post("/v1/payment_intents/{intent_id}/cancel")
    async def cancel_payment_intent(intent_id: str) -> dict[str, Any]:
        intent = get_intent(ledger, intent_id)
        cancel(intent)
        return ledger.save(intent)

    @app.post("/v1/refunds")
    async def create_refund(request: Request) -> dict[str, Any]:
        return refund(ledger, await params_of(request))

    @app.get("/v1/refunds")
    async def list_refunds(request: Request) -> dict[str, Any]:
        query = decode(list(request.query_params.multi_items()))

        def wanted(refund: dict[str, Any]) -> bool:
            return (
                "payment_intent" not in query or refund["payment_intent"] == query["payment_intent"]
            )

        return page("/v1/refunds", list(ledger.refunds.values()), wanted, query)

    @app.put("/_emulator/faults")
    async def set_faults(faults: Faults) -> Faults:
        ledger.faults = faults
        return faults

    @app.get("/_emulator/faults")
    async def get_faults() -> Faults:
        return ledger.faults

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument(
        "--ledger",
        type=Path,
        default=os.environ.get("STRIPE_EMULATOR_LEDGER") or None,
        help="SQLite file that keeps the ledger across restarts (default: memory only)",
    )
    args = parser.parse_args()
    uvicorn.run(create_app(args.ledger), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
