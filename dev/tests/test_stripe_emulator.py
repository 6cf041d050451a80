"""The emulator through the official Stripe SDK, as the payments service uses it."""

import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, TypedDict, Unpack

import pytest
import stripe
import uvicorn
from fastapi import FastAPI
from starlette.requests import ClientDisconnect
from stripe.params import (
    PaymentIntentCreateParams,
    PaymentIntentListParams,
    PaymentIntentListParamsCreated,
    RefundCreateParams,
)

from shop.dev.eventually import eventually
from shop.dev.stripe_emulator import create_app
from shop.dev.stripe_ledger import Ledger


@contextmanager
def emulator(ledger: Path | None = None) -> Iterator[stripe.StripeClient]:
    """The emulator on a free port (its ledger in memory, or in `ledger`), until the end of
    the block, and a Stripe client for it."""
    with serving(create_app(ledger)) as client:
        yield client


@contextmanager
def serving(app: FastAPI) -> Iterator[stripe.StripeClient]:
    """`app` on a free port until the end of the block, and a Stripe client for it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
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
def app() -> FastAPI:
    return create_app()


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[stripe.StripeClient]:
    with serving(app) as client:
        yield client


@pytest.fixture(scope="module")
def ledger(app: FastAPI) -> Ledger:
    """The served emulator's ledger, for tests that set what the API cannot (when an object
    was made)."""
    return app.state.ledger


class ChargeParams(TypedDict, total=False):
    """What a test changes of `charge`'s intent."""

    amount: int
    payment_method: str
    capture_method: Literal["automatic", "manual"]
    metadata: dict[str, str]
    allowed_payment_method_types: list[str]


class IntentListParams(PaymentIntentListParams, total=False):
    """Stripe's parameters of a list of PaymentIntents, and the emulator's own filter on their
    metadata."""

    metadata: dict[str, str]


def charge(
    client: stripe.StripeClient, key: str, **params: Unpack[ChargeParams]
) -> stripe.PaymentIntent:
    base: PaymentIntentCreateParams = {
        "amount": 1000,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "confirm": True,
    }
    return client.v1.payment_intents.create(
        params={**base, **params}, options={"idempotency_key": key}
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


def test_payment_method_types_is_refused_as_stripe_refuses_it(client: stripe.StripeClient) -> None:
    """Read-only since API version 2026-09-30 (the SDK's): payments sends
    allowed_payment_method_types, and an emulator that took the old name would hide a
    payments that sent it."""
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.raw_request(
            "post",
            "/v1/payment_intents",
            amount=1000,
            currency="eur",
            payment_method_types=["card"],
        )
    assert caught.value.http_status == 400
    assert caught.value.code == "payment_method_types_no_longer_supported"
    intent = charge(client, "k-allowed", allowed_payment_method_types=["card"])
    assert intent.payment_method_types == ["card"]


def test_same_key_same_params_replays_the_same_intent(client: stripe.StripeClient) -> None:
    first = charge(client, "k-replay", metadata={"order_id": "ord_r"})
    second = charge(client, "k-replay", metadata={"order_id": "ord_r"})
    assert first.id == second.id
    listed = client.v1.payment_intents.list(params=IntentListParams(metadata={"order_id": "ord_r"}))
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
    listed = client.v1.payment_intents.list(
        params=IntentListParams(metadata={"order_id": "ord_outage"})
    )
    assert len(listed.data) == 1


def test_dropped_answer_is_replayed_on_retry(client: stripe.StripeClient) -> None:
    set_faults(client, drop_next=1)
    with pytest.raises(stripe.APIConnectionError):
        charge(client, "k-drop", metadata={"order_id": "ord_drop"})
    # The charge was recorded before the connection dropped; the retry replays it.
    listed = client.v1.payment_intents.list(
        params=IntentListParams(metadata={"order_id": "ord_drop"})
    )
    assert len(listed.data) == 1
    assert charge(client, "k-drop", metadata={"order_id": "ord_drop"}).id == listed.data[0].id


def test_auto_pagination_walks_every_intent_once_newest_first(
    client: stripe.StripeClient,
) -> None:
    tag = {"batch": uuid.uuid4().hex}  # these 25 only (made within the same second or two)
    made = [charge(client, f"k-page-{tag['batch']}-{n}", metadata=tag).id for n in range(25)]
    first = client.v1.payment_intents.list(params=IntentListParams(metadata=tag, limit=10))
    assert [i.id for i in first.data] == made[::-1][:10] and first.has_more
    assert [i.id for i in first.auto_paging_iter()] == made[::-1]
    # Backwards from the oldest: the SDK follows ending_before and yields oldest first.
    newer = client.v1.payment_intents.list(
        params=IntentListParams(metadata=tag, limit=10, ending_before=made[0])
    )
    assert [i.id for i in newer.data] == made[10:0:-1] and newer.has_more
    assert [i.id for i in newer.auto_paging_iter()] == made[1:]
    last = client.v1.payment_intents.list(
        params=IntentListParams(metadata=tag, limit=10, starting_after=made[5])
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
def test_bad_list_parameters_are_a_400(
    client: stripe.StripeClient, params: PaymentIntentListParams
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.list(params=params)
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
        listed = client.v1.payment_intents.list(params=IntentListParams(metadata=order))
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
        assert client.v1.payment_intents.list(params=IntentListParams(metadata=order)).data == []


def test_charge_customer_fail_card_is_declined_when_charged(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as caught:
        charge(client, "k-customer-fail", payment_method="pm_card_chargeCustomerFail")
    assert caught.value.code == "card_declined"


def backdate(objects: dict[str, dict], ids: list[str], seconds: list[int]) -> None:
    """Say the objects `ids` were made at `seconds` (Unix times long past, each test its own,
    so the windows below hold only the test's objects)."""
    for object_id, second in zip(ids, seconds, strict=True):
        objects[object_id]["created"] = second


def window_ids(
    client: stripe.StripeClient, **created: Unpack[PaymentIntentListParamsCreated]
) -> list[str]:
    listed = client.v1.payment_intents.list(params={"created": created, "limit": 100})
    return [i.id for i in listed.data]


def test_the_created_window_selects_the_intents_made_in_it(
    client: stripe.StripeClient, ledger: Ledger
) -> None:
    t = 1_400_000_000
    made = [charge(client, f"k-window-{uuid.uuid4().hex}").id for _ in range(6)]
    backdate(ledger.intents, made, [t + n for n in range(6)])  # one a second
    assert window_ids(client, gte=t + 1, lt=t + 4) == made[3:0:-1]
    assert window_ids(client, gt=t + 1, lte=t + 4) == made[4:1:-1]
    assert window_ids(client, gte=t, lte=t + 5) == made[::-1]
    assert window_ids(client, lt=t + 6, gte=t + 6) == []
    exact = client.v1.payment_intents.list(params={"created": t + 2})
    assert [i.id for i in exact.data] == [made[2]]


def test_the_created_window_combines_with_metadata(
    client: stripe.StripeClient, ledger: Ledger
) -> None:
    t, tag = 1_400_001_000, {"batch": uuid.uuid4().hex}
    tagged = charge(client, f"k-window-tagged-{tag['batch']}", metadata=tag).id
    other = charge(client, f"k-window-other-{tag['batch']}").id
    backdate(ledger.intents, [tagged, other], [t, t])
    listed = client.v1.payment_intents.list(
        params=IntentListParams(created={"gte": t}, metadata=tag)
    )
    assert [i.id for i in listed.data] == [tagged]


def test_paging_inside_a_window_returns_every_intent_once(
    client: stripe.StripeClient, ledger: Ledger
) -> None:
    t = 1_400_002_000
    made = [charge(client, f"k-window-page-{uuid.uuid4().hex}").id for _ in range(25)]
    backdate(ledger.intents, made, [t + n // 2 for n in range(25)])  # two a second
    inside = made[4:20][::-1]  # made in [t + 2, t + 10), newest first
    window: PaymentIntentListParamsCreated = {"gte": t + 2, "lt": t + 10}
    first = client.v1.payment_intents.list(params={"created": window, "limit": 5})
    assert [i.id for i in first.data] == inside[:5] and first.has_more
    second = client.v1.payment_intents.list(
        params={"created": window, "limit": 5, "starting_after": inside[4]}
    )
    assert [i.id for i in second.data] == inside[5:10] and second.has_more
    last = client.v1.payment_intents.list(
        params={"created": window, "limit": 5, "starting_after": inside[14]}
    )
    assert [i.id for i in last.data] == inside[15:] and not last.has_more
    assert [i.id for i in first.auto_paging_iter()] == inside


@pytest.mark.parametrize(
    ("created", "param"),
    [
        ("yesterday", "created"),
        ({"gte": "soon"}, "created[gte]"),
        ({"gt": 1_400_000_000, "lt": "1.5"}, "created[lt]"),
        ({"after": 1_400_000_000}, "created[after]"),
    ],
)
@pytest.mark.parametrize("listing", ["payment_intents", "refunds"])
def test_a_bad_created_filter_is_a_400_naming_the_param(
    client: stripe.StripeClient, listing: str, created: object, param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        getattr(client.v1, listing).list(params={"created": created})
    assert caught.value.http_status == 400 and caught.value.param == param


def refund_of(
    client: stripe.StripeClient, intent_id: str, **params: Unpack[RefundCreateParams]
) -> stripe.Refund:
    return client.v1.refunds.create(params={"payment_intent": intent_id, **params})


def test_refunds_listed_by_payment_intent_and_created(
    client: stripe.StripeClient, ledger: Ledger
) -> None:
    t = 1_400_003_000
    first = charge(client, f"k-refunds-a-{uuid.uuid4().hex}")
    second = charge(client, f"k-refunds-b-{uuid.uuid4().hex}")
    made = [refund_of(client, intent.id, amount=100).id for intent in (first, second, first)]
    backdate(ledger.refunds, made, [t, t + 1, t + 2])
    listed = client.v1.refunds.list(params={"payment_intent": first.id})
    assert [r.id for r in listed.data] == [made[2], made[0]]
    in_window = client.v1.refunds.list(params={"created": {"gte": t, "lt": t + 2}})
    assert [r.id for r in in_window.data] == [made[1], made[0]]
    both = client.v1.refunds.list(params={"payment_intent": first.id, "created": {"gt": t}})
    assert [r.id for r in both.data] == [made[2]]
    exact = client.v1.refunds.list(params={"created": t + 1})
    assert [r.id for r in exact.data] == [made[1]]


def test_partial_refunds_up_to_what_is_left(client: stripe.StripeClient) -> None:
    intent = charge(client, f"k-partial-{uuid.uuid4().hex}", amount=1000)
    first = refund_of(client, intent.id, amount=400)
    assert (first.status, first.amount) == ("succeeded", 400)
    second = refund_of(client, intent.id, amount=500)
    assert (second.status, second.amount) == ("succeeded", 500)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        refund_of(client, intent.id, amount=200)  # 100 is left
    assert caught.value.http_status == 400 and caught.value.code == "charge_already_refunded"
    rest = refund_of(client, intent.id)  # without an amount: what is left
    assert rest.amount == 100
    listed = client.v1.refunds.list(params={"payment_intent": intent.id})
    assert [r.amount for r in listed.data] == [100, 500, 400]


def test_a_refund_keeps_its_reason(client: stripe.StripeClient) -> None:
    intent = charge(client, f"k-reason-{uuid.uuid4().hex}", amount=1000)
    asked = refund_of(client, intent.id, amount=300, reason="requested_by_customer")
    plain = refund_of(client, intent.id, amount=300)
    assert asked.reason == "requested_by_customer" and plain.reason is None
    listed = client.v1.refunds.list(params={"payment_intent": intent.id})
    assert [r.reason for r in listed.data] == [None, "requested_by_customer"]


def test_an_unknown_refund_reason_is_refused(client: stripe.StripeClient) -> None:
    intent = charge(client, f"k-bad-reason-{uuid.uuid4().hex}", amount=1000)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        refund_of(client, intent.id, reason="changed_mind")
    assert caught.value.http_status == 400 and caught.value.param == "reason"
    assert client.v1.refunds.list(params={"payment_intent": intent.id}).data == []


async def test_a_call_whose_client_left_before_its_body_was_read_keeps_no_answer(
    app: FastAPI, client: stripe.StripeClient
) -> None:
    """Once the client has gone (a payments process killed while its call waited on a slow
    Stripe), uvicorn answers the body's read with http.disconnect: nothing may be kept under
    the key then, or the client's retry, with the body, would get an idempotency error."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/payment_intents",
        "raw_path": b"/v1/payment_intents",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", b"Bearer sk_test_unit"),
            (b"idempotency-key", b"k-gone"),
            (b"content-type", b"application/x-www-form-urlencoded"),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }

    async def gone() -> dict[str, str]:
        return {"type": "http.disconnect"}

    async def unheard(_: object) -> None:
        pass

    with pytest.raises(ClientDisconnect):
        await app(scope, gone, unheard)
    assert "k-gone" not in app.state.ledger.replies
    assert charge(client, "k-gone", metadata={"order_id": "ord_gone"}).status == "succeeded"
