"""Orders that fail, are cancelled or race: compensated, never doubled, never half-done.
The autouse invariant check (conftest) runs after each of these too."""

import concurrent.futures

import httpx
import pytest
import stripe

from ..invariants import of_order
from .conftest import Mail
from .helpers import (
    OrderBody,
    available,
    cancel,
    customer,
    eventually,
    final_status,
    place,
    status_of,
    track,
)


def intents_of(stripe_api: stripe.StripeClient, order_id: str) -> list[stripe.PaymentIntent]:
    return stripe_api.v1.payment_intents.list(params=of_order(order_id)).data


def set_stock(gateway: httpx.Client, admin: dict[str, str], sku: str, quantity: int) -> None:
    response = gateway.put(
        f"/api/admin/products/{sku}/stock", json={"quantity": quantity}, headers=admin
    )
    assert response.status_code == 200, response.text


def test_declined_card_fails_with_reason_takes_nothing_and_tells_the_customer(
    gateway: httpx.Client, stripe_api: stripe.StripeClient, mail: Mail
) -> None:
    email, before = customer(), available(gateway, "cap-navy")
    order_id = place(
        gateway,
        [{"product_id": "cap-navy", "quantity": 1}],
        email=email,
        payment_method="pm_card_chargeDeclined",
    )
    status = final_status(gateway, order_id)
    assert status["status"] == "failed" and "declined" in status["reason"]
    assert all(i.amount_received == 0 for i in intents_of(stripe_api, order_id))
    assert available(gateway, "cap-navy") == before
    [message] = eventually(lambda: mail.received(email, order_id)).values()
    assert "declined" in message.get_payload()


def test_out_of_stock_line_releases_the_others_and_voids_the_hold(
    gateway: httpx.Client, stripe_api: stripe.StripeClient, admin: dict[str, str]
) -> None:
    set_stock(gateway, admin, "poster-a2", 1)
    mugs = available(gateway, "mug-classic")
    # mug-classic sorts first, so it is reserved before poster-a2 runs out.
    order_id = place(
        gateway,
        [{"product_id": "poster-a2", "quantity": 2}, {"product_id": "mug-classic", "quantity": 3}],
    )
    status = final_status(gateway, order_id)
    assert status["status"] == "failed" and "out of stock" in status["reason"]
    assert [i.status for i in intents_of(stripe_api, order_id)] == ["canceled"]
    assert available(gateway, "mug-classic") == mugs
    assert available(gateway, "poster-a2") == 1


def test_concurrent_orders_never_oversell(
    gateway: httpx.Client, stripe_api: stripe.StripeClient, admin: dict[str, str]
) -> None:
    stock, buyers = 4, 10
    set_stock(gateway, admin, "tee-logo", stock)
    with concurrent.futures.ThreadPoolExecutor(buyers) as pool:
        orders = list(
            pool.map(
                lambda _: place(gateway, [{"product_id": "tee-logo", "quantity": 1}]), range(buyers)
            )
        )
    outcomes = [final_status(gateway, order_id, timeout=60)["status"] for order_id in orders]
    assert outcomes.count("completed") == stock
    assert outcomes.count("failed") == buyers - stock
    assert available(gateway, "tee-logo") == 0
    paid = [o for o in orders if any(i.amount_received for i in intents_of(stripe_api, o))]
    assert sorted(paid) == sorted(
        o for o, s in zip(orders, outcomes, strict=True) if s == "completed"
    )
    set_stock(gateway, admin, "tee-logo", 30)


def test_cancel_within_the_window_voids_releases_and_tells_the_customer(
    gateway: httpx.Client, stripe_api: stripe.StripeClient, mail: Mail
) -> None:
    email, mugs = customer(), available(gateway, "mug-classic")
    order_id = place(gateway, [{"product_id": "mug-classic", "quantity": 2}], email=email)
    response = cancel(gateway, order_id)
    assert response.status_code == 202, response.text
    status = final_status(gateway, order_id)
    assert status["status"] == "cancelled"
    assert [i.status for i in intents_of(stripe_api, order_id)] == ["canceled"]
    assert available(gateway, "mug-classic") == mugs
    assert cancel(gateway, order_id).json()["status"] == "cancelled"
    [message] = eventually(lambda: mail.received(email, order_id)).values()
    assert "cancelled" in message["Subject"]


def test_cancel_while_a_stripe_call_is_in_flight_still_unwinds(
    gateway: httpx.Client, stripe_api: stripe.StripeClient, stack
) -> None:
    # The authorization takes 1.5 s; the cancel arrives while it is in flight.
    httpx.put(f"{stack.stripe_url}/_emulator/faults", json={"latency_next": 1, "latency_ms": 1500})
    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 1}])
    response = cancel(gateway, order_id)
    assert response.status_code == 202, response.text
    assert final_status(gateway, order_id)["status"] == "cancelled"
    assert [i.status for i in intents_of(stripe_api, order_id)] == ["canceled"]


def test_cancel_during_capture_is_409_and_the_order_completes(gateway: httpx.Client, stack) -> None:
    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 1}])
    eventually(lambda: status_of(gateway, order_id)["step"] == "reserved")
    # The next Stripe call, the capture, takes 1.5 s: the cancel arrives in the middle of it.
    httpx.put(f"{stack.stripe_url}/_emulator/faults", json={"latency_next": 1, "latency_ms": 1500})
    eventually(lambda: status_of(gateway, order_id)["step"] == "capturing", every=0.02)
    response = cancel(gateway, order_id)
    assert response.status_code == 409, response.text
    assert final_status(gateway, order_id)["status"] == "completed"


def test_cancel_of_a_fulfilled_order_is_409_and_of_an_unknown_one_404(
    gateway: httpx.Client,
) -> None:
    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 1}])
    assert final_status(gateway, order_id)["status"] == "completed"
    assert cancel(gateway, order_id).status_code == 409
    unknown = gateway.post(
        "/api/orders/ord_000000000000000000000000/cancel", headers={"Order-Secret": "osec_x"}
    )
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("faults", "quantity", "charged"),
    [
        ({"fail_next": 3}, 2, 800),  # an outage: 500s, nothing recorded
        ({"drop_next": 2}, 1, 400),  # the charge recorded, the answer lost on the way back
    ],
    ids=["stripe-outage", "connection-dropped-after-charge"],
)
def test_stripe_faults_are_retried_with_the_same_key_one_charge(
    gateway: httpx.Client,
    stripe_api: stripe.StripeClient,
    stack,
    faults: dict[str, int],
    quantity: int,
    charged: int,
) -> None:
    httpx.put(f"{stack.stripe_url}/_emulator/faults", json=faults)
    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": quantity}])
    assert final_status(gateway, order_id, timeout=60)["status"] == "completed"
    assert [i.amount_received for i in intents_of(stripe_api, order_id)] == [charged]


def test_smtp_refusing_for_a_while_still_delivers_one_email(
    gateway: httpx.Client, mail: Mail, stack
) -> None:
    stack.smtp_faults.write_text("2")
    email = customer()
    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 1}], email=email)
    assert final_status(gateway, order_id, timeout=60)["status"] == "completed"
    assert len(mail.to(email, order_id)) == 1
    assert stack.smtp_faults.read_text() == "0"


def test_form_key_and_api_key_paths_share_one_order(gateway: httpx.Client) -> None:
    key = f"shared-{customer()}"
    body: OrderBody = {
        "customer_email": customer(),
        "items": [{"product_id": "sticker-pack", "quantity": 1}],
    }
    api = gateway.post("/api/orders", json=body, headers={"Idempotency-Key": key})
    form = {
        "customer_email": body["customer_email"],
        "qty.sticker-pack": "1",
        "idempotency_key": key,
    }
    page = gateway.post("/orders", data=form)
    order_id = track(api.json()["order_id"], body["customer_email"])
    assert page.headers["location"] == f"/orders/{order_id}"


def test_cancel_button_on_the_order_page_is_only_for_the_customer(
    gateway: httpx.Client, stack
) -> None:
    email = customer()
    form = {"customer_email": email, "qty.sticker-pack": "1"}
    with (
        httpx.Client(base_url=stack.gateway_url) as browser,
        httpx.Client(base_url=stack.gateway_url) as stranger,
    ):
        placed = browser.post("/orders", data=form)
        order_id = track(placed.headers["location"].rsplit("/", 1)[1], email)
        button = f'hx-post="/orders/{order_id}/cancel"'
        assert button not in stranger.get(f"/orders/{order_id}").text
        assert stranger.post(f"/orders/{order_id}/cancel").status_code == 404
        assert button in browser.get(f"/orders/{order_id}").text  # the secret is in a cookie
        answer = browser.post(f"/orders/{order_id}/cancel", headers={"HX-Request": "true"})
        assert answer.status_code == 200 and "Cancelling" in answer.text
        assert final_status(gateway, order_id)["status"] == "cancelled"
        assert "is cancelled" in browser.post(f"/orders/{order_id}/cancel").text
