"""The emulator's events and webhooks: Stripe's Event shape, Stripe's signature (checked with
the official SDK's own verifier), retries, the webhook fault switches, resend, and delivery
that goes on after a restart."""

import json
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from fastapi import FastAPI

from shop.dev.eventually import eventually
from shop.dev.stripe_emulator import create_app
from shop.dev.stripe_webhooks import EventStore, Retry, signature_header

SECRET = "whsec_unit_test"
FAST = Retry(first_delay=0.05, max_delay=0.2, give_up_after=30)


def hooked_app(receiver: Any, ledger: Path | None = None, retry: Retry = FAST) -> FastAPI:
    """The emulator, posting its events to `receiver`."""
    return create_app(ledger, webhook_url=receiver.url, webhook_secret=SECRET, webhook_retry=retry)


@contextmanager
def emulator(
    serve: Any, receiver: Any, ledger: Path | None = None, retry: Retry = FAST
) -> Iterator[tuple[str, stripe.StripeClient]]:
    with serve(hooked_app(receiver, ledger, retry)) as base:
        yield (
            base,
            stripe.StripeClient(
                "sk_test_unit", base_addresses={"api": base}, max_network_retries=0
            ),
        )


def authorize(client: stripe.StripeClient, method: str = "pm_card_visa") -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={
            "amount": 900,
            "currency": "eur",
            "payment_method": method,
            "capture_method": "manual",
            "confirm": True,
            "metadata": {"order_id": "ord_hook"},
        },
        options={"idempotency_key": uuid.uuid4().hex},
    )


def set_faults(base: str, **faults: int) -> None:
    httpx.put(f"{base}/_emulator/faults", json=faults).raise_for_status()


def types(deliveries: list[Any]) -> list[str]:
    return [json.loads(d.body)["type"] for d in deliveries]


def settle(app: FastAPI) -> None:
    """Until every delivery has ended (acknowledged or given up). Deliveries are made with
    their events, before the API answers: after this nothing more is sent, counts are final."""
    store = app.state.webhooks.store
    eventually(lambda: not store.deliveries, 10, what="every webhook delivery ended")


def test_events_are_stripe_events_signed_as_stripe_signs(serve: Any, receiver: Any) -> None:
    with emulator(serve, receiver) as (_, client):
        intent = authorize(client)
        deliveries = receiver.wait_for(2)
    # Stripe does not promise an order of delivery: each event goes its own way.
    assert sorted(types(deliveries)) == [
        "payment_intent.amount_capturable_updated",
        "payment_intent.created",
    ]
    [delivery] = receiver.of_type("payment_intent.amount_capturable_updated")
    event = stripe.Webhook.construct_event(delivery.body, delivery.signature, SECRET)
    assert event.id.startswith("evt_") and event.object == "event"
    assert event.type == "payment_intent.amount_capturable_updated"
    assert event.livemode is False and event.api_version and event.created
    assert event.pending_webhooks == 1 and event.request.idempotency_key
    pi = event.data.object
    assert pi["id"] == intent.id and pi["status"] == "requires_capture"
    assert pi["amount_capturable"] == 900 and pi["metadata"]["order_id"] == "ord_hook"
    # The newer client's verifier too; and a wrong secret or a changed body fail.
    assert client.construct_event(delivery.body, delivery.signature, SECRET).id == event.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body, delivery.signature, "whsec_wrong")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body + " ", delivery.signature, SECRET)


def test_the_signature_is_stripes_scheme() -> None:
    """t=<time>,v1=<hex HMAC-SHA256 of '<t>.<body>'>, checked against the SDK's own maths."""
    header = signature_header('{"id": "evt_1"}', SECRET, 1_700_000_000)
    expected = stripe.WebhookSignature._compute_signature('1700000000.{"id": "evt_1"}', SECRET)
    assert header == f"t=1700000000,v1={expected}"


def test_3ds_outcomes_make_their_events(serve: Any, receiver: Any) -> None:
    with emulator(serve, receiver) as (base, client):
        completed = authorize(client, "pm_card_threeDSecure2Required")
        failed = authorize(client, "pm_card_authenticationRequired")
        httpx.post(f"{base}/_emulator/3ds/{completed.id}", json={"outcome": "complete"})
        httpx.post(f"{base}/3ds/{failed.id}/fail")
        receiver.wait_for(6)
        [capturable] = receiver.of_type("payment_intent.amount_capturable_updated")
        [payment_failed] = receiver.of_type("payment_intent.payment_failed")
        assert len(receiver.of_type("payment_intent.requires_action")) == 2
        capturable_pi = json.loads(capturable.body)["data"]["object"]
        assert capturable_pi["id"] == completed.id
        assert capturable_pi["status"] == "requires_capture"
        assert json.loads(capturable.body)["request"]["id"] is None  # the customer, not the API
        failed_pi = json.loads(payment_failed.body)["data"]["object"]
        assert failed_pi["id"] == failed.id and failed_pi["status"] == "requires_payment_method"
        assert failed_pi["last_payment_error"]["code"] == "payment_intent_authentication_failure"
        # The list for tests: newest first, one intent's only.
        listed = httpx.get(f"{base}/_emulator/events", params={"payment_intent": failed.id})
        assert [e["type"] for e in listed.json()["data"]] == [
            "payment_intent.payment_failed",
            "payment_intent.requires_action",
            "payment_intent.created",
        ]
        # And Stripe's own list, by type.
        hooks = client.v1.events.list(params={"type": "payment_intent.payment_failed"})
        assert [e.data.object["id"] for e in hooks.data] == [failed.id]


def test_capture_cancel_and_decline_events(serve: Any, receiver: Any) -> None:
    with emulator(serve, receiver) as (_, client):
        captured = authorize(client)
        client.v1.payment_intents.capture(captured.id)
        voided = authorize(client, "pm_card_threeDSecure2Required")
        client.v1.payment_intents.cancel(voided.id)
        with pytest.raises(stripe.CardError):
            authorize(client, "pm_card_chargeDeclined")
        receiver.wait_for(8)
        assert [
            json.loads(d.body)["data"]["object"]["id"]
            for d in receiver.of_type("payment_intent.succeeded")
        ] == [captured.id]
        assert len(receiver.of_type("payment_intent.canceled")) == 1
        [declined] = receiver.of_type("payment_intent.payment_failed")
        assert json.loads(declined.body)["data"]["object"]["last_payment_error"]["code"] == (
            "card_declined"
        )


def test_a_failing_endpoint_gets_the_event_again_with_backoff(
    serve: Any, receiver: Any, client_for: Any
) -> None:
    receiver.fail_next = 3
    app = hooked_app(receiver)
    with serve(app) as base:
        intent = authorize(client_for(base), "pm_card_threeDSecure2Required")
        settle(app)
        deliveries = receiver.wait_for(5)  # created and requires_action, 3 of them refused
        assert len(deliveries) == 5
        events = httpx.get(f"{base}/_emulator/events", params={"payment_intent": intent.id})
        assert all(e["pending_webhooks"] == 0 for e in events.json()["data"])
    ids = [json.loads(d.body)["id"] for d in deliveries]
    assert len(set(ids)) == 2
    # Each attempt is signed afresh and verifies.
    for d in deliveries:
        stripe.Webhook.construct_event(d.body, d.signature, SECRET)


def test_an_unreachable_endpoint_is_retried_then_given_up(serve: Any, receiver: Any) -> None:
    retry = Retry(first_delay=0.05, max_delay=0.1, give_up_after=0.6)
    app = create_app(webhook_url="http://127.0.0.1:9/nothing", webhook_retry=retry)
    with serve(app) as base:
        client = stripe.StripeClient("sk_test_unit", base_addresses={"api": base})
        intent = authorize(client)
        settle(app)  # given up after give_up_after (0.6 s): nothing left pending
        listed = httpx.get(f"{base}/_emulator/events", params={"payment_intent": intent.id})
        assert all(e["pending_webhooks"] == 1 for e in listed.json()["data"])


def test_the_answer_never_waits_for_the_webhook(serve: Any, receiver: Any) -> None:
    receiver.delay = 2.5  # a slow endpoint: the answer must come well before it acknowledges
    with emulator(serve, receiver) as (_, client):
        started = time.monotonic()
        authorize(client)
        assert time.monotonic() - started < 1.5
        receiver.wait_for(2)


def test_duplicate_fault_delivers_the_next_events_twice(
    serve: Any, receiver: Any, client_for: Any
) -> None:
    app = hooked_app(receiver)
    with serve(app) as base:
        client = client_for(base)
        set_faults(base, webhook_duplicate_next=2)
        authorize(client)  # created + amount_capturable_updated: both twice
        deliveries = receiver.wait_for(4)
        authorize(client)  # the switch is spent: once each
        deliveries = receiver.wait_for(6)
        settle(app)
        assert len(receiver.bodies()) == 6
        assert httpx.get(f"{base}/_emulator/faults").json()["webhook_duplicate_next"] == 0
    ids = [json.loads(d.body)["id"] for d in deliveries]
    assert sorted(Counter(ids[:4]).values()) == [2, 2]  # two events, each twice
    assert sorted(Counter(ids[4:]).values()) == [1, 1] and not set(ids[4:]) & set(ids[:4])


def test_delay_fault_holds_the_next_events(serve: Any, receiver: Any) -> None:
    with emulator(serve, receiver) as (base, client):
        set_faults(base, webhook_delay_next=1, webhook_delay_ms=1000)
        started = time.time()
        authorize(client)
        deliveries = receiver.wait_for(2)
    created, capturable = sorted(deliveries, key=lambda d: d.at)[::-1]  # the held one last
    assert json.loads(created.body)["type"] == "payment_intent.created"
    assert created.at - started >= 0.95
    assert created.at - capturable.at >= 0.5


def test_resend_delivers_an_old_event_again(serve: Any, receiver: Any) -> None:
    with emulator(serve, receiver) as (base, client):
        intent = authorize(client, "pm_card_threeDSecure2Required")
        httpx.post(f"{base}/_emulator/3ds/{intent.id}", json={"outcome": "complete"})
        receiver.wait_for(3)
        listed = httpx.get(f"{base}/_emulator/events", params={"payment_intent": intent.id})
        requires_action = listed.json()["data"][1]
        assert requires_action["type"] == "payment_intent.requires_action"
        answer = httpx.post(f"{base}/_emulator/events/{requires_action['id']}/resend")
        assert answer.status_code == 200 and answer.json()["id"] == requires_action["id"]
        late = receiver.wait_for(4)[3]
        event = stripe.Webhook.construct_event(late.body, late.signature, SECRET)
        assert event.id == requires_action["id"]
        assert event.data.object["status"] == "requires_action"  # as it was then
        assert httpx.post(f"{base}/_emulator/events/evt_nowhere/resend").status_code == 404


def test_without_a_webhook_url_events_are_only_recorded(serve: Any) -> None:
    with serve(create_app()) as base:
        client = stripe.StripeClient("sk_test_unit", base_addresses={"api": base})
        intent = authorize(client)
        listed = httpx.get(f"{base}/_emulator/events", params={"payment_intent": intent.id})
        assert [e["pending_webhooks"] for e in listed.json()["data"]] == [0, 0]
        event_id = listed.json()["data"][0]["id"]
        assert httpx.post(f"{base}/_emulator/events/{event_id}/resend").status_code == 400


def test_undelivered_events_are_delivered_after_a_restart(
    serve: Any, receiver: Any, second_receiver: Any, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    receiver.fail_next = 1_000
    with emulator(serve, receiver, ledger) as (_, client):
        intent = authorize(client)
        receiver.wait_for(4)  # both events, refused at least twice
    # Restarted with an endpoint of its own: an attempt the stop cut short may still land on
    # the first one, however late, and must not count as a delivery after the restart.
    restarted = hooked_app(second_receiver, ledger)
    with serve(restarted) as base:
        settle(restarted)
        deliveries = second_receiver.wait_for(2)
        assert len(deliveries) == 2  # acknowledged: not sent again
        assert sorted(types(deliveries)) == [
            "payment_intent.amount_capturable_updated",
            "payment_intent.created",
        ]
        listed = httpx.get(f"{base}/_emulator/events", params={"payment_intent": intent.id})
        assert [e["pending_webhooks"] for e in listed.json()["data"]] == [0, 0]


def test_only_the_newest_events_stay_in_memory_all_in_the_file(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "events.sqlite3", isolation_level=None)
    store = EventStore(db, keep=3)
    for n in range(5):
        store.put_event({"id": f"evt_{n}", "type": "payment_intent.created"})
    assert [e["id"] for e in store.recent()] == ["evt_2", "evt_3", "evt_4"]
    assert store.get("evt_0") == {"id": "evt_0", "type": "payment_intent.created"}
    assert store.get("evt_nowhere") is None
    reopened = EventStore(db, keep=2)
    assert [e["id"] for e in reopened.recent()] == ["evt_3", "evt_4"]


def test_an_endpoint_gets_only_its_enabled_events(serve: Any, receiver: Any) -> None:
    """As a Stripe endpoint set up for some types: the rest are recorded, not sent."""
    wanted = frozenset({"payment_intent.succeeded"})
    app = create_app(
        webhook_url=receiver.url, webhook_secret=SECRET, webhook_retry=FAST, webhook_events=wanted
    )
    with serve(app) as base:
        client = stripe.StripeClient("sk_test_unit", base_addresses={"api": base})
        intent = authorize(client)
        client.v1.payment_intents.capture(intent.id)
        recorded = httpx.get(f"{base}/_emulator/events", params={"payment_intent": intent.id})
        settle(app)  # nothing else follows
        [delivery] = receiver.wait_for(1)
    assert types([delivery]) == ["payment_intent.succeeded"]
    assert len(recorded.json()["data"]) == 3  # created, amount_capturable_updated, succeeded
