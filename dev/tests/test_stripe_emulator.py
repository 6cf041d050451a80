"""The emulator through the official Stripe SDK, as the payments service uses it."""

import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import stripe
import uvicorn

from shop.dev.eventually import eventually
from shop.dev.stripe_emulator import create_app


@contextmanager
def emulator(ledger: Path | None = None) -> Iterator[stripe.StripeClient]:
    """The emulator on a free port (its ledger in memory, or in `ledger`), until the end of
    the block, and a Stripe client for it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ledger), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    eventually(lambda: server.started, 10, every=0.01, what="the emulator listening")
    try:
        yield stripe.StripeClient(
            "sk_test_unit",
            base_addresses={"api": f"http://127.0.0.1:{port}"},
            max_network_retries=0,
        )
    finally:
        server.should_exit = True
        thread.join(5)


@pytest.fixture(scope="module")
def client() -> Iterator[stripe.StripeClient]:
    with emulator() as client:
        yield client


def charge(client: stripe.StripeClient, key: str, **params: object) -> stripe.PaymentIntent:
    base = {"amount": 1000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
    return client.v1.payment_intents.create(
        params={**base, **params},  # type: ignore[arg-type]
        options={"idempotency_key": key},
    )


def test_visa_charge_succeeds_with_metadata(client: stripe.StripeClient) -> None:
    intent = charge(client, "k-visa", metadata={"order_id": "ord_a"})
    assert intent.status == "succeeded" and intent.amount_received == 1000
    assert intent.metadata["order_id"] == "ord_a"
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"


def test_declined_card_is_a_402_card_error(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as caught:
        charge(client, "k-declined", payment_method="pm_card_chargeDeclined")
    assert caught.value.http_status == 402
    assert caught.value.code == "card_declined"


def test_same_key_same_params_replays_the_same_intent(client: stripe.StripeClient) -> None:
    first = charge(client, "k-replay", metadata={"order_id": "ord_r"})
    second = charge(client, "k-replay", metadata={"order_id": "ord_r"})
    assert first.id == second.id
    listed = client.v1.payment_intents.list(params={"metadata": {"order_id": "ord_r"}})
    assert [i.id for i in listed.data] == [first.id]


def test_same_key_other_params_is_a_400(client: stripe.StripeClient) -> None:
    charge(client, "k-mismatch", amount=1000)
    with pytest.raises(stripe.IdempotencyError):
        charge(client, "k-mismatch", amount=2000)


def test_a_declined_answer_is_replayed_too(client: stripe.StripeClient) -> None:
    for _ in range(2):
        with pytest.raises(stripe.CardError):
            charge(client, "k-declined-twice", payment_method="pm_card_chargeDeclined")


def test_manual_capture_cancel_and_refund(client: stripe.StripeClient) -> None:
    held = charge(client, "k-manual", capture_method="manual")
    assert held.status == "requires_capture"
    captured = client.v1.payment_intents.capture(held.id)
    assert captured.status == "succeeded"
    refund = client.v1.refunds.create(params={"payment_intent": held.id})
    assert refund.amount == 1000 and refund.status == "succeeded"
    refunds = client.v1.refunds.list(params={"payment_intent": held.id})
    assert [r.id for r in refunds.data] == [refund.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"payment_intent": held.id})  # nothing left to refund

    voided = charge(client, "k-void", capture_method="manual")
    assert client.v1.payment_intents.cancel(voided.id).status == "canceled"


def test_missing_api_key_is_refused(client: stripe.StripeClient) -> None:
    bare = stripe.StripeClient(
        "rk_wrong", base_addresses={"api": client._requestor.base_addresses["api"]}
    )
    with pytest.raises(stripe.AuthenticationError):
        bare.v1.payment_intents.list()


def set_faults(client: stripe.StripeClient, **faults: int) -> None:
    import httpx

    base = client._requestor.base_addresses["api"]
    httpx.put(f"{base}/_emulator/faults", json=faults).raise_for_status()


def test_outage_then_retry_with_the_same_key_charges_once(client: stripe.StripeClient) -> None:
    set_faults(client, fail_next=1)
    with pytest.raises(stripe.APIError):
        charge(client, "k-outage", metadata={"order_id": "ord_outage"})
    intent = charge(client, "k-outage", metadata={"order_id": "ord_outage"})
    assert intent.status == "succeeded"
    listed = client.v1.payment_intents.list(params={"metadata": {"order_id": "ord_outage"}})
    assert len(listed.data) == 1


def test_dropped_answer_is_replayed_on_retry(client: stripe.StripeClient) -> None:
    set_faults(client, drop_next=1)
    with pytest.raises(stripe.APIConnectionError):
        charge(client, "k-drop", metadata={"order_id": "ord_drop"})
    # The charge was recorded before the connection dropped; the retry replays it.
    listed = client.v1.payment_intents.list(params={"metadata": {"order_id": "ord_drop"}})
    assert len(listed.data) == 1
    assert charge(client, "k-drop", metadata={"order_id": "ord_drop"}).id == listed.data[0].id


def test_auto_pagination_walks_every_intent_once_newest_first(
    client: stripe.StripeClient,
) -> None:
    tag = {"batch": uuid.uuid4().hex}  # these 25 only (made within the same second or two)
    made = [charge(client, f"k-page-{tag['batch']}-{n}", metadata=tag).id for n in range(25)]
    first = client.v1.payment_intents.list(params={"metadata": tag, "limit": 10})
    assert [i.id for i in first.data] == made[::-1][:10] and first.has_more
    assert [i.id for i in first.auto_paging_iter()] == made[::-1]
    # Backwards from the oldest: the SDK follows ending_before and yields oldest first.
    newer = client.v1.payment_intents.list(
        params={"metadata": tag, "limit": 10, "ending_before": made[0]}
    )
    assert [i.id for i in newer.data] == made[10:0:-1] and newer.has_more
    assert [i.id for i in newer.auto_paging_iter()] == made[1:]
    last = client.v1.payment_intents.list(
        params={"metadata": tag, "limit": 10, "starting_after": made[5]}
    )
    assert [i.id for i in last.data] == made[4::-1] and not last.has_more


def test_refunds_page_too(client: stripe.StripeClient) -> None:
    intent = charge(client, f"k-refunds-{uuid.uuid4().hex}", amount=1200)
    made = [
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 100}).id
        for _ in range(12)
    ]
    listed = client.v1.refunds.list(params={"payment_intent": intent.id, "limit": 5})
    assert len(listed.data) == 5 and listed.has_more
    assert [r.id for r in listed.auto_paging_iter()] == made[::-1]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"starting_after": "pi_nowhere"},
        {"starting_after": "pi_a", "ending_before": "pi_b"},
    ],
)
def test_bad_list_parameters_are_a_400(client: stripe.StripeClient, params: dict) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.list(params=params)  # type: ignore[arg-type]
    assert caught.value.http_status == 400


def test_the_ledger_survives_a_restart(tmp_path: Path) -> None:
    ledger = tmp_path / "state" / "stripe-ledger.sqlite3"
    order = {"order_id": "ord_kept"}
    with emulator(ledger) as client:
        held = charge(client, "k-kept-held", capture_method="manual", metadata=order)
        captured = charge(client, "k-kept-captured", metadata=order)
        refund = client.v1.refunds.create(params={"payment_intent": captured.id, "amount": 300})
        with pytest.raises(stripe.CardError):
            charge(client, "k-kept-declined", payment_method="pm_card_chargeDeclined")

    with emulator(ledger) as client:  # a new process would read the same file
        listed = client.v1.payment_intents.list(params={"metadata": order})
        assert [(i.id, i.status) for i in listed.data] == [
            (captured.id, "succeeded"),
            (held.id, "requires_capture"),
        ]
        assert [r.id for r in client.v1.refunds.list(params={"payment_intent": captured.id})] == [
            refund.id
        ]
        # The held charge can still be captured; answers kept for keys are replayed.
        assert client.v1.payment_intents.capture(held.id).amount_received == 1000
        assert charge(client, "k-kept-held", capture_method="manual", metadata=order).id == held.id
        with pytest.raises(stripe.CardError):
            charge(client, "k-kept-declined", payment_method="pm_card_chargeDeclined")
        with pytest.raises(stripe.IdempotencyError):
            charge(client, "k-kept-captured", amount=5000, metadata=order)

    with emulator() as client:  # without a file: nothing from before
        assert client.v1.payment_intents.list(params={"metadata": order}).data == []


def test_charge_customer_fail_card_is_declined_when_charged(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as caught:
        charge(client, "k-customer-fail", payment_method="pm_card_chargeCustomerFail")
    assert caught.value.code == "card_declined"
