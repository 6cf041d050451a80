"""Addresses beyond ASCII: an internationalised domain is mailed (as punycode); a local part
in Unicode, which the dev mail server (no SMTPUTF8) cannot take, never keeps an order from
its final status, nor the shop's admission bound from other customers."""

import uuid

import httpx
import stripe

from ..invariants import money_kept
from .conftest import MAX_ORDERS_IN_FLIGHT, Mail
from .helpers import FINAL, eventually, final_status, place, status_of, track

STICKERS = [{"product_id": "sticker-pack", "quantity": 1}]


def test_an_internationalised_domain_gets_its_mail(gateway: httpx.Client, mail: Mail) -> None:
    name = f"buyer-{uuid.uuid4().hex[:8]}"
    response = gateway.post(
        "/api/orders", json={"customer_email": f"{name}@bücher.de", "items": STICKERS}
    )
    assert response.status_code == 202, response.text
    # The invariant check reads the inbox under the address the mail went to.
    order_id = track(response.json()["order_id"], f"{name}@xn--bcher-kva.de")
    status = final_status(gateway, order_id)
    assert status["status"] == "completed" and "email sent" in status["message"], status
    assert eventually(lambda: mail.received(f"{name}@xn--bcher-kva.de", order_id))


def test_addresses_the_mail_server_cannot_take_never_stall_orders_nor_close_the_shop(
    gateway: httpx.Client, stripe_api: stripe.StripeClient, mail: Mail
) -> None:
    orders = []
    for _ in range(MAX_ORDERS_IN_FLIGHT + 1):
        email = f"bücherwurm-{uuid.uuid4().hex[:8]}@example.com"
        response = gateway.post("/api/orders", json={"customer_email": email, "items": STICKERS})
        assert response.status_code == 202, response.text
        orders.append(response.json()["order_id"])
    # Not tracked: these orders send no mail, which the after-test check would ask for.
    for order_id in orders:
        status = eventually(
            lambda o=order_id: (s := status_of(gateway, o))["status"] in FINAL and s, timeout=60
        )
        assert status["status"] == "completed", status
        assert status["message"].endswith("confirmation email could not be sent"), status
        assert money_kept(stripe_api, order_id) == (400, False)
        assert not [m for m in mail.messages() if order_id in (m["Subject"] or "")]
    # Every other customer is still served.
    assert final_status(gateway, place(gateway, STICKERS))["status"] == "completed"
