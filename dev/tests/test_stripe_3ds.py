"""3-D Secure in the emulator: cards whose bank asks the customer, the bank page, the tests' API,
through the official SDK as the payments service uses it."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict, Unpack
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe

from shop.dev.stripe_emulator import create_app

THREE_DS_CARDS = ["pm_card_threeDSecure2Required", "pm_card_authenticationRequired"]


@pytest.fixture(scope="module")
def base(serve: Any) -> Iterator[str]:
    with serve(create_app()) as url:
        yield url


@pytest.fixture
def client(base: str) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_unit", base_addresses={"api": base}, max_network_retries=0)


class AuthorizeParams(TypedDict, total=False):
    """What a test adds to `authorize`'s intent."""

    return_url: str
    off_session: bool


def authorize(
    client: stripe.StripeClient,
    method: str = "pm_card_threeDSecure2Required",
    key: str | None = None,
    **params: Unpack[AuthorizeParams],
) -> stripe.PaymentIntent:
    """As the payments service authorizes: manual capture, confirmed at once."""
    return client.v1.payment_intents.create(
        params={
            "amount": 1250,
            "currency": "eur",
            "payment_method": method,
            "allowed_payment_method_types": ["card"],
            "capture_method": "manual",
            "confirm": True,
            **params,
        },
        options={"idempotency_key": key or uuid.uuid4().hex},
    )


def redirect(intent: stripe.PaymentIntent) -> stripe.PaymentIntent.NextAction.RedirectToUrl:
    """Where an intent in requires_action sends the customer."""
    assert intent.next_action is not None and intent.next_action.redirect_to_url is not None
    return intent.next_action.redirect_to_url


def bank_page(intent: stripe.PaymentIntent) -> str:
    url = redirect(intent).url
    assert url is not None
    return url


@pytest.mark.parametrize("method", THREE_DS_CARDS)
def test_a_3ds_card_asks_for_a_redirect(
    client: stripe.StripeClient, base: str, method: str
) -> None:
    intent = authorize(client, method, return_url="http://shop.test/orders/o1")
    assert intent.status == "requires_action"
    assert intent.amount_capturable == 0
    action = intent.to_dict()["next_action"]
    assert action == {
        "type": "redirect_to_url",
        "redirect_to_url": {
            "url": f"{base}/3ds/{intent.id}",
            "return_url": "http://shop.test/orders/o1",
        },
    }
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_action"


def test_without_a_return_url_it_is_null(client: stripe.StripeClient, base: str) -> None:
    intent = authorize(client)
    assert redirect(intent).return_url is None
    assert redirect(intent).url == f"{base}/3ds/{intent.id}"


def test_the_same_key_replays_the_same_requires_action(client: stripe.StripeClient) -> None:
    key = uuid.uuid4().hex
    first = authorize(client, key=key, return_url="http://shop.test/r")
    second = authorize(client, key=key, return_url="http://shop.test/r")
    assert first.id == second.id and first.to_dict() == second.to_dict()
    assert second.last_response is not None
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"


def test_off_session_a_3ds_card_is_declined(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as caught:
        authorize(client, "pm_card_authenticationRequired", off_session=True)
    assert caught.value.code == "authentication_required"


def emulator_3ds(base: str, intent_id: str, outcome: str) -> httpx.Response:
    return httpx.post(f"{base}/_emulator/3ds/{intent_id}", json={"outcome": outcome})


def test_completed_through_the_api_it_can_be_captured(
    client: stripe.StripeClient, base: str
) -> None:
    intent = authorize(client)
    answer = emulator_3ds(base, intent.id, "complete")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "requires_capture" and body["amount_capturable"] == 1250
    assert body["next_action"] is None
    captured = client.v1.payment_intents.capture(intent.id)
    assert captured.status == "succeeded" and captured.amount_received == 1250
    assert captured.amount_capturable == 0


def test_failed_through_the_api_it_wants_another_method(
    client: stripe.StripeClient, base: str
) -> None:
    intent = authorize(client)
    assert emulator_3ds(base, intent.id, "fail").status_code == 200
    failed = client.v1.payment_intents.retrieve(intent.id)
    assert failed.status == "requires_payment_method"
    assert failed.next_action is None and failed.payment_method is None
    error = failed.last_payment_error
    assert error is not None and error.code == "payment_intent_authentication_failure"
    assert error.type == "invalid_request_error" and error.message
    assert error.payment_method is not None
    assert error.payment_method.id == "pm_card_threeDSecure2Required"
    # Nothing to capture; voiding it (as the shop's compensation does) works.
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.capture(intent.id)
    assert client.v1.payment_intents.cancel(intent.id).status == "canceled"


def test_the_api_refuses_an_intent_not_waiting_and_an_unknown_one(
    client: stripe.StripeClient, base: str
) -> None:
    intent = authorize(client, "pm_card_visa")
    assert intent.status == "requires_capture"
    refused = emulator_3ds(base, intent.id, "complete")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "payment_intent_unexpected_state"
    assert emulator_3ds(base, "pi_nowhere", "complete").status_code == 404
    assert emulator_3ds(base, intent.id, "maybe").status_code == 422


def test_requires_action_cannot_be_captured_but_can_be_canceled(
    client: stripe.StripeClient,
) -> None:
    intent = authorize(client)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.capture(intent.id)
    assert caught.value.http_status == 400
    assert caught.value.code == "payment_intent_unexpected_state"
    canceled = client.v1.payment_intents.cancel(intent.id)
    assert canceled.status == "canceled" and canceled.next_action is None
    assert canceled.canceled_at is not None


def test_the_bank_page_shows_the_amount_and_two_forms(
    client: stripe.StripeClient, base: str
) -> None:
    intent = authorize(client)
    page = httpx.get(bank_page(intent))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Confirm the payment with your bank" in page.text
    assert "12.50 EUR" in page.text
    assert f"action='/3ds/{intent.id}/complete'" in page.text
    assert f"action='/3ds/{intent.id}/fail'" in page.text
    assert ">Complete<" in page.text and ">Fail<" in page.text


def test_the_complete_button_without_a_return_url_says_so(
    client: stripe.StripeClient, base: str
) -> None:
    intent = authorize(client)
    answer = httpx.post(f"{base}/3ds/{intent.id}/complete")
    assert answer.status_code == 200
    assert "Payment authenticated. You can close this page and go back to the shop." in answer.text
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_capture"
    # Pressed again, or the page opened again: already done, nothing changes.
    again = httpx.post(f"{base}/3ds/{intent.id}/fail")
    assert again.status_code == 409 and "already done" in again.text
    assert "already done" in httpx.get(f"{base}/3ds/{intent.id}").text
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_capture"


@pytest.mark.parametrize(
    ("outcome", "redirect_status"), [("complete", "succeeded"), ("fail", "failed")]
)
def test_a_button_with_a_return_url_sends_the_customer_back(
    client: stripe.StripeClient, base: str, outcome: str, redirect_status: str
) -> None:
    intent = authorize(client, return_url="http://shop.test/orders/o7?from=3ds")
    answer = httpx.post(f"{base}/3ds/{intent.id}/{outcome}")
    assert answer.status_code == 303
    where = urlsplit(answer.headers["location"])
    assert (where.netloc, where.path) == ("shop.test", "/orders/o7")
    query = parse_qs(where.query)
    assert query["from"] == ["3ds"] and query["payment_intent"] == [intent.id]
    assert query["redirect_status"] == [redirect_status]
    expected = "requires_capture" if outcome == "complete" else "requires_payment_method"
    assert client.v1.payment_intents.retrieve(intent.id).status == expected


def test_an_unknown_intent_has_no_page(base: str) -> None:
    assert httpx.get(f"{base}/3ds/pi_nowhere").status_code == 404
    assert httpx.post(f"{base}/3ds/pi_nowhere/complete").status_code == 404


def test_the_public_url_is_where_the_page_is_said_to_be(serve: Any) -> None:
    app = create_app(public_url="http://stripe.example:12111")
    with serve(app) as url:
        client = stripe.StripeClient(
            "sk_test_unit", base_addresses={"api": url}, max_network_retries=0
        )
        intent = authorize(client)
        assert redirect(intent).url == (f"http://stripe.example:12111/3ds/{intent.id}")


def test_an_intent_waiting_for_its_customer_survives_a_restart(serve: Any, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    with serve(create_app(ledger)) as url:
        client = stripe.StripeClient("sk_test_unit", base_addresses={"api": url})
        intent = authorize(client, key="k-3ds-kept")
    with serve(create_app(ledger)) as url:
        client = stripe.StripeClient("sk_test_unit", base_addresses={"api": url})
        assert client.v1.payment_intents.retrieve(intent.id).status == "requires_action"
        assert authorize(client, key="k-3ds-kept").id == intent.id
        assert emulator_3ds(url, intent.id, "complete").json()["status"] == "requires_capture"
        events = httpx.get(f"{url}/_emulator/events", params={"payment_intent": intent.id})
        assert [e["type"] for e in events.json()["data"]] == [
            "payment_intent.amount_capturable_updated",
            "payment_intent.requires_action",
            "payment_intent.created",
        ]
