"""A Stripe-compatible emulator for dev and tests (Stripe itself is unreachable here).

It speaks the part of Stripe's API the shop uses, through the official SDK: PaymentIntents
(create, confirm, capture, cancel, retrieve, list with a metadata filter), Refunds (create,
whole or partial, with a `reason`; list by payment_intent), lists filtered by `created` and
paged as Stripe pages them (newest first, `limit`, `starting_after`, `ending_before`,
`has_more`), `Idempotency-Key` replay, and the test payment methods `pm_card_visa` (succeeds)
and `pm_card_chargeDeclined` (402 card_declined).

Strong customer authentication: `pm_card_threeDSecure2Required` and
`pm_card_authenticationRequired` leave a confirmed intent in `requires_action` with a
`redirect_to_url` next action to this emulator's own bank page, `/3ds/{id}` (stripe_auth_page),
whose buttons (or `POST /_emulator/3ds/{id}` for tests) complete or fail the check. Every change
of an intent makes an Event, POSTed signed to `--webhook-url` (stripe_webhooks).

The ledger (PaymentIntents, Refunds, the answers kept for idempotency keys) is in memory, or
with `--ledger PATH` (or STRIPE_EMULATOR_LEDGER) also in an SQLite file, read back on start:
the dev stack keeps it in its state folder, so charges outlive a restart like the rest.
"""

import argparse
import asyncio
import json
import logging
import operator
import os
import secrets
import sqlite3
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Literal, NoReturn
from urllib.parse import urlencode

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
)
from pydantic import BaseModel, Field

from shop.dev import stripe_auth_page
from shop.dev.stripe_forms import decode
from shop.dev.stripe_front import StripeFront
from shop.dev.stripe_webhooks import DEFAULT_SECRET, EventStore, Retry, WebhookFaults, Webhooks
from shop.shared.settings import secrets_dir

GOOD_CARDS = {"pm_card_visa", "pm_card_mastercard", "pm_card_amex"}
# Declined when charged (chargeCustomerFail: Stripe lets it be saved to a customer first).
DECLINED_CARDS = {
    "pm_card_chargeDeclined": "generic_decline",
    "pm_card_chargeCustomerFail": "generic_decline",
}
# Cards whose bank asks the customer to confirm (3-D Secure) on every payment.
AUTHENTICATION_CARDS = {"pm_card_threeDSecure2Required", "pm_card_authenticationRequired"}
# What Stripe says in last_payment_error when the customer fails the bank's check.
AUTHENTICATION_FAILURE = (
    "The provided PaymentMethod has failed authentication. You can provide "
    "payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again."
)
# The reasons Stripe takes from a caller for a refund.
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
# Stripe's `created` list filter: created[<op>]=<unix seconds>, combinable.
CREATED_OPERATORS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
# The event Stripe sends when an intent enters each status.
STATUS_EVENTS = {
    "requires_action": "payment_intent.requires_action",
    "requires_capture": "payment_intent.amount_capturable_updated",
    "succeeded": "payment_intent.succeeded",
    "canceled": "payment_intent.canceled",
    "requires_payment_method": "payment_intent.payment_failed",
}


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
    webhook_duplicate_next: int = Field(0, ge=0, description="deliver the next events twice")
    webhook_delay_next: int = Field(
        0, ge=0, description="hold the next events webhook_delay_ms before the first attempt"
    )
    webhook_delay_ms: int = Field(0, ge=0)

    def take_webhook_faults(self) -> WebhookFaults:
        """What applies to the next event delivered (each switch counts down)."""
        taken = WebhookFaults()
        if self.webhook_duplicate_next:
            self.webhook_duplicate_next -= 1
            taken.duplicate = True
        if self.webhook_delay_next:
            self.webhook_delay_next -= 1
            taken.delay_ms = self.webhook_delay_ms
        return taken


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
                if obj["object"] == "refund":
                    obj.setdefault("reason", None)  # kept before refunds had one
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


def timestamp(value: Any, param: str) -> int:
    """Unix seconds, as Stripe reads a time in a request (`param`: its name there)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeError(
            400, "invalid_request_error", f"Invalid integer: {value}", param=param
        ) from None


def created_filter(query: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Stripe's `created` filter of a list: `created=<t>` the objects made in second t,
    `created[gt|gte|lt|lte]=<t>` (any of them together) those in the window; none: all.
    The values are checked at once, so a bad one is refused even when nothing matches."""
    created = query.get("created")
    if created is None:
        return lambda _: True
    if not isinstance(created, dict):
        exact = timestamp(created, "created")
        return lambda obj: obj["created"] == exact
    bounds = []
    for name, value in created.items():
        if name not in CREATED_OPERATORS:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Received unknown parameter: created[{name}]",
                param=f"created[{name}]",
            )
        bounds.append((CREATED_OPERATORS[name], timestamp(value, f"created[{name}]")))
    return lambda obj: all(compare(obj["created"], t) for compare, t in bounds)


def flag(params: dict[str, Any], name: str) -> bool:
    return str(params.get(name, "false")).lower() == "true"


def create_intent(ledger: Ledger, params: dict[str, Any]) -> dict[str, Any]:
    """A new intent, recorded (the caller confirms it when asked and saves it)."""
    intent_id = new_id("pi")
    intent = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": as_int(params, "amount"),
        "amount_capturable": 0,
        "amount_received": 0,
        "canceled_at": None,
        "cancellation_reason": None,
        "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
        "currency": str(params.get("currency", "")).lower() or _missing("currency"),
        "capture_method": params.get("capture_method", "automatic"),
        "created": int(time.time()),
        "description": params.get("description"),
        "metadata": params.get("metadata") or {},
        "payment_method": params.get("payment_method"),
        "payment_method_types": params.get("payment_method_types") or ["card"],
        "last_payment_error": None,
        "livemode": False,
        "next_action": None,
        "status": "requires_payment_method",
    }
    if intent["payment_method"]:
        intent["status"] = "requires_confirmation"
    ledger.intents[intent["id"]] = intent
    return intent


def _missing(name: str) -> str:
    raise StripeError(400, "invalid_request_error", f"Missing required param: {name}.", param=name)


def decline(intent: dict[str, Any], code: str, decline_code: str, message: str) -> NoReturn:
    """The card is declined: the intent wants another payment method; Stripe answers 402."""
    intent["status"] = "requires_payment_method"
    error = {"code": code, "decline_code": decline_code, "message": message, "type": "card_error"}
    intent["last_payment_error"] = error
    raise StripeError(
        402,
        "card_error",
        message,
        code=code,
        decline_code=decline_code,
        payment_intent=dict(intent),
    )


def confirm(intent: dict[str, Any], params: dict[str, Any], public_url: str) -> None:
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
        decline(intent, "card_declined", DECLINED_CARDS[method], "Your card was declined.")
    if method in AUTHENTICATION_CARDS and flag(params, "off_session"):
        # Nobody is there to authenticate: Stripe declines instead of asking.
        message = "Your card was declined. This transaction requires authentication."
        decline(intent, "authentication_required", "authentication_required", message)
    if method not in GOOD_CARDS | AUTHENTICATION_CARDS:
        raise StripeError(
            400,
            "invalid_request_error",
            f"No such PaymentMethod: '{method}'",
            code="resource_missing",
            param="payment_method",
        )
    intent["last_payment_error"] = None
    if method in AUTHENTICATION_CARDS:
        # Stripe's redirect flow: the customer goes to the bank's page (here, ours) and comes
        # back to return_url; what happened there arrives as a webhook.
        intent["status"] = "requires_action"
        intent["next_action"] = {
            "type": "redirect_to_url",
            "redirect_to_url": {
                "url": f"{public_url}/3ds/{intent['id']}",
                "return_url": params.get("return_url"),
            },
        }
        return
    authorized(intent)


def authorized(intent: dict[str, Any]) -> None:
    """The bank said yes: a hold to capture later, or the money at once."""
    intent["next_action"] = None
    if intent["capture_method"] == "manual":
        intent["status"], intent["amount_capturable"] = "requires_capture", intent["amount"]
    else:
        intent["status"], intent["amount_received"] = "succeeded", intent["amount"]


def authenticate(intent: dict[str, Any], outcome: Literal["complete", "fail"]) -> None:
    """The customer's answer on the bank's 3-D Secure page."""
    if intent["status"] != "requires_action":
        raise StripeError(
            400,
            "invalid_request_error",
            f"This PaymentIntent's status is {intent['status']}: it does not wait for "
            "authentication.",
            code="payment_intent_unexpected_state",
        )
    if outcome == "complete":
        authorized(intent)
        return
    # As Stripe: the method that failed moves into last_payment_error, the intent waits for
    # another one.
    intent["status"], intent["next_action"] = "requires_payment_method", None
    intent["last_payment_error"] = {
        "code": "payment_intent_authentication_failure",
        "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
        "message": AUTHENTICATION_FAILURE,
        "payment_method": {"id": intent["payment_method"], "object": "payment_method"},
        "type": "invalid_request_error",
    }
    intent["payment_method"] = None


def lifecycle_events(before: str | None, intent: dict[str, Any], failed: bool) -> list[str]:
    """The events Stripe sends for a change of an intent from status `before` (None: it was
    just made); `failed`: a payment attempt failed (even with no change of status)."""
    types = ["payment_intent.created"] if before is None else []
    status = intent["status"]
    if failed:
        types.append("payment_intent.payment_failed")
    elif status != before and status in STATUS_EVENTS:
        types.append(STATUS_EVENTS[status])
    return types


def return_to(intent: dict[str, Any], return_url: str, outcome: str) -> str:
    """Where the bank page sends the customer back: return_url with what Stripe adds to it."""
    query = urlencode(
        {
            "payment_intent": intent["id"],
            "payment_intent_client_secret": intent.get("client_secret") or "",
            "redirect_status": "succeeded" if outcome == "complete" else "failed",
        }
    )
    return f"{return_url}{'&' if '?' in return_url else '?'}{query}"


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
    intent["amount_capturable"] = 0


def cancel(intent: dict[str, Any], params: dict[str, Any]) -> None:
    if intent["status"] in {"succeeded", "canceled"}:
        raise StripeError(
            400,
            "invalid_request_error",
            f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}.",
            code="payment_intent_unexpected_state",
        )
    intent["status"], intent["next_action"], intent["amount_capturable"] = "canceled", None, 0
    intent["canceled_at"] = int(time.time())
    intent["cancellation_reason"] = params.get("cancellation_reason")


def refund_reason(params: dict[str, Any]) -> str | None:
    reason = params.get("reason") or None
    if reason is not None and reason not in REFUND_REASONS:
        raise StripeError(
            400,
            "invalid_request_error",
            "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
            param="reason",
        )
    return reason


def refund(ledger: Ledger, params: dict[str, Any]) -> dict[str, Any]:
    intent = get_intent(ledger, str(params.get("payment_intent") or _missing("payment_intent")))
    reason = refund_reason(params)
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
        "reason": reason,
        "status": "succeeded",
        "created": int(time.time()),
        "metadata": params.get("metadata") or {},
    }
    ledger.refunds[item["id"]] = item
    return ledger.save(item)


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


class Authentication(BaseModel):
    """The tests' answer to a 3-D Secure check (what the bank page's buttons do)."""

    outcome: Literal["complete", "fail"]


def get_event(store: EventStore, event_id: str) -> dict[str, Any]:
    event = store.get(event_id)
    if event is None:
        raise StripeError(
            404,
            "invalid_request_error",
            f"No such event: '{event_id}'",
            code="resource_missing",
            param="id",
        )
    return event


def event_filter(query: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Events of one type (`type`, `*` wildcards as Stripe's `payment_intent.*`) and/or about
    one intent (`payment_intent`, the emulator's own filter)."""
    wanted_type = str(query.get("type") or "*")
    intent_id = query.get("payment_intent")

    def wanted(event: dict[str, Any]) -> bool:
        if intent_id and event["data"]["object"].get("id") != intent_id:
            return False
        if wanted_type.endswith("*"):
            return event["type"].startswith(wanted_type[:-1])
        return event["type"] == wanted_type

    return wanted


def create_app(
    ledger_path: Path | None = None,
    *,
    public_url: str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str = DEFAULT_SECRET,
    webhook_retry: Retry | None = None,
    webhook_events: frozenset[str] | None = None,
) -> FastAPI:
    """The emulator. `public_url`: where a browser reaches it (the 3-D Secure page's links;
    default: the address each API call came to); `webhook_url`: where events are POSTed
    (none: events are only recorded); `webhook_events`: the types POSTed there (none: all)."""
    ledger = Ledger(ledger_path)
    store = EventStore(ledger.file.db if ledger.file else None)
    webhooks = Webhooks(
        store,
        webhook_url,
        webhook_secret,
        lambda: ledger.faults.take_webhook_faults(),
        webhook_retry,
        webhook_events,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        webhooks.resume()
        yield
        await webhooks.close()

    app = FastAPI(title="Stripe emulator", lifespan=lifespan)
    app.add_middleware(StripeFront, ledger=ledger)  # faults, the API key, idempotency keys
    app.state.ledger, app.state.webhooks = ledger, webhooks

    def base_url(request: Request) -> str:
        return public_url or str(request.base_url).rstrip("/")

    @contextmanager
    def changing(
        intent: dict[str, Any], request: Request | None, *, created: bool = False
    ) -> Iterator[None]:
        """Around a change of an intent: save it and send the events the change makes, also
        when it ends in an error (a declined card changes the intent too)."""
        before = None if created else intent["status"]
        failed = False
        try:
            yield
        except StripeError as e:
            failed = e.body["type"] == "card_error"
            raise
        finally:
            ledger.save(intent)
            origin = None
            if request is not None:  # the API call that made the change, as events say it
                key = request.headers.get("idempotency-key")
                origin = {"id": new_id("req"), "idempotency_key": key}
            for type_ in lifecycle_events(before, intent, failed):
                webhooks.emit(type_, intent, origin)

    def authenticate_intent(intent_id: str, outcome: Literal["complete", "fail"]) -> dict[str, Any]:
        """The bank page's buttons and the tests' API: one answer to a 3-D Secure check."""
        intent = get_intent(ledger, intent_id)
        with changing(intent, None):
            authenticate(intent, outcome)
        return intent

    @app.exception_handler(StripeError)
    async def stripe_error(_: Request, e: StripeError) -> JSONResponse:
        return JSONResponse({"error": e.body}, status_code=e.status)

    async def params_of(request: Request) -> dict[str, Any]:
        form = await request.form()
        return decode([(k, str(v)) for k, v in form.multi_items()])

    @app.post("/v1/payment_intents")
    async def create_payment_intent(request: Request) -> dict[str, Any]:
        params = await params_of(request)
        intent = create_intent(ledger, params)
        with changing(intent, request, created=True):
            if flag(params, "confirm"):
                confirm(intent, params, base_url(request))
        return intent

    @app.get("/v1/payment_intents")
    async def list_payment_intents(request: Request) -> dict[str, Any]:
        query = decode(list(request.query_params.multi_items()))
        metadata = query.get("metadata") or {}
        in_window = created_filter(query)

        def wanted(intent: dict[str, Any]) -> bool:
            matches = all(intent["metadata"].get(k) == v for k, v in metadata.items())
            return matches and in_window(intent)

        return page("/v1/payment_intents", list(ledger.intents.values()), wanted, query)

    @app.get("/v1/payment_intents/{intent_id}")
    async def retrieve_payment_intent(intent_id: str) -> dict[str, Any]:
        return get_intent(ledger, intent_id)

    @app.post("/v1/payment_intents/{intent_id}/confirm")
    async def confirm_payment_intent(intent_id: str, request: Request) -> dict[str, Any]:
        intent = get_intent(ledger, intent_id)
        params = await params_of(request)
        with changing(intent, request):
            confirm(intent, params, base_url(request))
        return intent

    @app.post("/v1/payment_intents/{intent_id}/capture")
    async def capture_payment_intent(intent_id: str, request: Request) -> dict[str, Any]:
        intent = get_intent(ledger, intent_id)
        with changing(intent, request):
            capture(intent)
        return intent

    @app.post("/v1/payment_intents/{intent_id}/cancel")
    async def cancel_payment_intent(intent_id: str, request: Request) -> dict[str, Any]:
        intent = get_intent(ledger, intent_id)
        params = await params_of(request)
        with changing(intent, request):
            cancel(intent, params)
        return intent

    @app.post("/v1/refunds")
    async def create_refund(request: Request) -> dict[str, Any]:
        return refund(ledger, await params_of(request))

    @app.get("/v1/refunds")
    async def list_refunds(request: Request) -> dict[str, Any]:
        query = decode(list(request.query_params.multi_items()))
        intent_id = query.get("payment_intent")
        in_window = created_filter(query)

        def wanted(refund: dict[str, Any]) -> bool:
            return intent_id in (None, refund["payment_intent"]) and in_window(refund)

        return page("/v1/refunds", list(ledger.refunds.values()), wanted, query)

    @app.get("/v1/events")
    async def list_events(request: Request) -> dict[str, Any]:
        query = decode(list(request.query_params.multi_items()))
        return page("/v1/events", store.recent(), event_filter(query), query)

    @app.get("/v1/events/{event_id}")
    async def retrieve_event(event_id: str) -> dict[str, Any]:
        return get_event(store, event_id)

    @app.get("/3ds/{intent_id}", response_class=HTMLResponse)
    async def bank_page(intent_id: str) -> HTMLResponse:
        intent = ledger.intents.get(intent_id)
        if intent is None:
            return HTMLResponse(stripe_auth_page.unknown_page(intent_id), status_code=404)
        if intent["status"] != "requires_action":
            return HTMLResponse(stripe_auth_page.done_page(intent))
        return HTMLResponse(stripe_auth_page.confirm_page(intent))

    @app.post("/3ds/{intent_id}/{outcome}", response_model=None)
    async def bank_page_answer(
        intent_id: str, outcome: Literal["complete", "fail"]
    ) -> HTMLResponse | RedirectResponse:
        intent = ledger.intents.get(intent_id)
        if intent is None:
            return HTMLResponse(stripe_auth_page.unknown_page(intent_id), status_code=404)
        if intent["status"] != "requires_action":  # pressed twice, or another tab was first
            return HTMLResponse(stripe_auth_page.done_page(intent), status_code=409)
        return_url = (intent["next_action"] or {}).get("redirect_to_url", {}).get("return_url")
        authenticate_intent(intent_id, outcome)
        if return_url:
            return RedirectResponse(return_to(intent, return_url, outcome), status_code=303)
        return HTMLResponse(stripe_auth_page.outcome_page(intent, outcome))

    @app.post("/_emulator/3ds/{intent_id}")
    async def authenticate_for_tests(intent_id: str, answer: Authentication) -> dict[str, Any]:
        return authenticate_intent(intent_id, answer.outcome)

    @app.get("/_emulator/events")
    async def emulator_events(request: Request) -> dict[str, Any]:
        """The events made (newest first), e.g. `?payment_intent=pi_...`, without an API key."""
        query = decode(list(request.query_params.multi_items()))
        query.setdefault("limit", "100")
        return page("/_emulator/events", store.recent(), event_filter(query), query)

    @app.post("/_emulator/events/{event_id}/resend")
    async def resend_event(event_id: str) -> dict[str, Any]:
        if not webhooks.url:
            raise StripeError(400, "invalid_request_error", "No webhook endpoint is configured.")
        get_event(store, event_id)
        return webhooks.resend(event_id) or {}

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


def webhook_secret_setting() -> str | None:
    """STRIPE_WEBHOOK_SECRET as the shop's settings read it: the environment variable, else
    the file `stripe_webhook_secret` in the secrets folder (compose's /run/secrets)."""
    if os.environ.get("STRIPE_WEBHOOK_SECRET"):
        return os.environ["STRIPE_WEBHOOK_SECRET"]
    folder = secrets_dir()
    if folder is None or not (folder / "stripe_webhook_secret").is_file():
        return None
    return (folder / "stripe_webhook_secret").read_text(encoding="utf-8").strip() or None


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
    parser.add_argument(
        "--public-url",
        default=os.environ.get("STRIPE_EMULATOR_PUBLIC_URL") or None,
        help="where a browser reaches this emulator, for its 3-D Secure page "
        "(default: http://127.0.0.1:<port>)",
    )
    parser.add_argument(
        "--webhook-url",
        default=os.environ.get("STRIPE_EMULATOR_WEBHOOK_URL") or None,
        help="where to POST events, signed (default: nowhere, events are only recorded)",
    )
    parser.add_argument(
        "--webhook-secret",
        default=webhook_secret_setting() or DEFAULT_SECRET,
        help="the endpoint's signing secret (default: STRIPE_WEBHOOK_SECRET, else the file "
        f"stripe_webhook_secret in the secrets folder, else {DEFAULT_SECRET})",
    )
    parser.add_argument(
        "--webhook-events",
        default=os.environ.get("STRIPE_EMULATOR_WEBHOOK_EVENTS") or "*",
        help="the event types sent to the endpoint, comma-separated (default: *, all)",
    )
    args = parser.parse_args()
    events = args.webhook_events.strip()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Not a line per webhook delivered (a failed delivery is logged by stripe_webhooks).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = create_app(
        args.ledger,
        public_url=(args.public_url or f"http://127.0.0.1:{args.port}").rstrip("/"),
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        webhook_events=None if events == "*" else frozenset(events.replace(" ", "").split(",")),
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
