"""POST /webhooks/stripe against a stand-in for Restate's ingress: only signed, recent events
about a known order reach it, one-way, keyed by the event's id."""

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import stripe
from fastapi import FastAPI
from pydantic import SecretStr

from shop.gateway import errors, webhooks
from shop.gateway.restate_ingress import RestateIngress
from shop.gateway.settings import GatewaySettings

SECRET = "whsec_unitTest0123456789abcdefXYZ"
KNOWN = "ord_0123456789abcdef01234567"
UNKNOWN = "ord_ffffffffffffffffffffffff"


class Restate:
    """Knows one order; records what is sent to it."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/output"):
            return httpx.Response(470 if KNOWN in request.url.path else 404)
        self.sent.append(request)
        return httpx.Response(202, json={"invocationId": "inv_1", "status": "Accepted"})


@pytest.fixture
def restate() -> Restate:
    return Restate()


@pytest.fixture
async def gateway(restate: Restate) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    errors.install(app)
    app.include_router(webhooks.router)
    app.state.settings = GatewaySettings(
        admin_token=SecretStr("5d2f8a91c7e04b36a8f1d9c2e7b40a6f"),
        stripe_webhook_secret=SecretStr(SECRET),
        shop_dev_mode=False,
    )
    restate_api = httpx.AsyncClient(
        base_url="http://restate", transport=httpx.MockTransport(restate.handle)
    )
    app.state.ingress = RestateIngress(restate_api)
    transport = httpx.ASGITransport(app=app)
    async with restate_api, httpx.AsyncClient(base_url="http://gw", transport=transport) as client:
        yield client


def event(
    kind: str = "payment_intent.amount_capturable_updated",
    caused_by: str | None = None,
    **metadata: str,
) -> str:
    """A Stripe event about an intent; `caused_by` is the idempotency key of the request that
    caused it (None: it happened by itself, as when a 3-D Secure check ends)."""
    intent = {"id": "pi_1", "object": "payment_intent", "metadata": metadata}
    body = {
        "id": "evt_1",
        "object": "event",
        "type": kind,
        "data": {"object": intent},
        "request": {"id": caused_by and "req_1", "idempotency_key": caused_by},
    }
    return json.dumps(body)


async def post(
    gateway: httpx.AsyncClient, payload: str, secret: str = SECRET, at: int | None = None
) -> httpx.Response:
    signature = stripe.WebhookSignature.generate_signature_header(payload, secret, at)
    return await gateway.post(
        "/webhooks/stripe", content=payload, headers={"Stripe-Signature": signature}
    )


async def test_a_signed_event_wakes_the_order_one_way_keyed_by_the_event(
    gateway: httpx.AsyncClient, restate: Restate
) -> None:
    response = await post(gateway, event(order_id=KNOWN))
    assert response.status_code == 200, response.text
    assert response.json()["delivered"] is True
    [sent] = restate.sent
    assert sent.url.path == f"/OrderFulfilment/{KNOWN}/payment_authenticated/send"
    assert sent.headers["idempotency-key"] == "evt_1"
    body: dict[str, Any] = json.loads(sent.content)
    assert body == {"event_id": "evt_1", "type": "payment_intent.amount_capturable_updated"}


@pytest.mark.parametrize(
    "payload",
    [
        event("payment_intent.created", order_id=KNOWN),  # not one the order waits for
        event(),  # no order in the metadata
        event(order_id="not-an-order-id"),
        event("payment_intent.payment_failed", order_id=UNKNOWN),
        # Caused by the order's own authorization: the order had the answer in its response.
        event(caused_by=f"shop-{KNOWN}-authorize", order_id=KNOWN),
        event("payment_intent.payment_failed", caused_by=f"shop-{KNOWN}-authorize", order_id=KNOWN),
    ],
)
async def test_other_events_are_acknowledged_and_change_nothing(
    gateway: httpx.AsyncClient, restate: Restate, payload: str
) -> None:
    response = await post(gateway, payload)
    assert response.status_code == 200, response.text
    assert response.json()["delivered"] is False
    assert restate.sent == []


async def test_an_event_caused_by_another_request_still_wakes_the_order(
    gateway: httpx.AsyncClient, restate: Restate
) -> None:
    """Only the order's own keys are skipped: another order's, or a client's, are not."""
    for key in (f"shop-{UNKNOWN}-authorize", "a-client-key", f"shop-{KNOWN}"):
        restate.sent.clear()
        response = await post(gateway, event(caused_by=key, order_id=KNOWN))
        assert response.json()["delivered"] is True, key
        assert len(restate.sent) == 1


async def test_forged_stale_or_unsigned_events_are_refused(
    gateway: httpx.AsyncClient, restate: Restate
) -> None:
    payload = event(order_id=KNOWN)
    wrong_secret = await post(gateway, payload, secret="whsec_someone_else")
    stale = await post(gateway, payload, at=int(time.time()) - 301)
    unsigned = await gateway.post("/webhooks/stripe", content=payload)
    tampered = await gateway.post(
        "/webhooks/stripe",
        content=payload.replace("pi_1", "pi_2"),
        headers={
            "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(payload, SECRET)
        },
    )
    for response in (wrong_secret, stale, unsigned, tampered):
        assert response.status_code == 400, response.text
        assert "Stripe-Signature" in response.json()["error"]
    assert restate.sent == []


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", '{"object": "payment_intent"}'])
async def test_a_signed_body_that_is_not_an_event_is_refused(
    gateway: httpx.AsyncClient, restate: Restate, payload: str
) -> None:
    response = await post(gateway, payload)
    assert response.status_code == 400
    assert response.json() == {"error": "webhook refused: the body is not a Stripe event"}
    assert restate.sent == []


async def test_an_event_signed_ahead_of_the_tolerance_is_refused(
    gateway: httpx.AsyncClient, restate: Restate
) -> None:
    """Captured and replayable for as long as it is dated ahead, if that were allowed."""
    future = await post(gateway, event(order_id=KNOWN), at=int(time.time()) + 3600)
    assert future.status_code == 400 and "in the future" in future.json()["error"]
    soon = await post(gateway, event(order_id=KNOWN), at=int(time.time()) + 60)  # clock skew
    assert soon.status_code == 200, soon.text
    assert len(restate.sent) == 1
