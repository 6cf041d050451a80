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

This module is the API's routes and the program; each part has its own: stripe_intents
(PaymentIntents), stripe_refunds, stripe_lists (lists, pages, events), stripe_webhooks (events
delivered), stripe_front (faults, API key, idempotency keys, before every route),
stripe_faults, stripe_ledger, stripe_params (parameters and errors), stripe_auth_page.
"""

import argparse
import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel

from shop.dev import stripe_auth_page
from shop.dev.stripe_faults import Faults
from shop.dev.stripe_forms import decode
from shop.dev.stripe_front import StripeFront
from shop.dev.stripe_intents import (
    authenticate,
    cancel,
    capture,
    confirm,
    create_intent,
    get_intent,
    lifecycle_events,
    return_to,
)
from shop.dev.stripe_ledger import Ledger, new_id
from shop.dev.stripe_lists import created_filter, event_filter, get_event, page
from shop.dev.stripe_params import StripeError, flag
from shop.dev.stripe_refunds import refund
from shop.dev.stripe_webhooks import EventStore, Retry, Webhooks
from shop.shared.settings import secrets_dir
from shop.shared.stripe_webhook import DEV_WEBHOOK_SECRET


class Authentication(BaseModel):
    """The tests' answer to a 3-D Secure check (what the bank page's buttons do)."""

    outcome: Literal["complete", "fail"]


def create_app(
    ledger_path: Path | None = None,
    *,
    public_url: str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str = DEV_WEBHOOK_SECRET,
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
        return e.response()

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
        default=webhook_secret_setting() or DEV_WEBHOOK_SECRET,
        help="the endpoint's signing secret (default: STRIPE_WEBHOOK_SECRET, else the file "
        f"stripe_webhook_secret in the secrets folder, else {DEV_WEBHOOK_SECRET})",
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
