"""Addresses beyond ASCII: an internationalised domain is mailed (as punycode); a local part
in Unicode, which the dev mail server (no SMTPUTF8) cannot take, never keeps an order from
its final status, nor the shop's admission bound from other customers; and no address gets
more than its share of failure mails."""

import functools
import uuid

import httpx
import stripe

from ..invariants import money_kept
from .conftest import MAX_ORDERS_IN_FLIGHT, Mail
from .helpers import eventually, final_status, place, track

STICKERS = [{"product_id": "sticker-pack", "quantity": 1}]
FAILED_MAILS_PER_HOUR = 5  # the email service's default


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
    def placed(email: str) -> str | None:
        """The order's id; None for a 429, which a client tries again after (as a customer
        would, while orders still working hold the bound)."""
        body = {"customer_email": email, "items": STICKERS}
        response = gateway.post("/api/orders", json=body)
        assert response.status_code in (202, 429), response.text
        return response.json()["order_id"] if response.status_code == 202 else None

    # More than the admission bound: orders that stalled on their mail would hold it for good.
    emails = [
        f"bücherwurm-{uuid.uuid4().hex[:8]}@example.com" for _ in range(MAX_ORDERS_IN_FLIGHT + 1)
    ]
    orders = [eventually(functools.partial(placed, email), timeout=60) for email in emails]
    # Not tracked: these orders send no mail, which the after-test check would ask for.
    for order_id in orders:
        status = final_status(gateway, order_id, timeout=60)
        assert status["status"] == "completed", status
        assert status["message"].endswith("confirmation email could not be sent"), status
        assert money_kept(stripe_api, order_id) == (400, False)
        assert not [m for m in mail.messages() if order_id in (m["Subject"] or "")]
    # Every other customer is still served.
    assert final_status(gateway, place(gateway, STICKERS))["status"] == "completed"


def test_declined_orders_mail_one_address_five_times_an_hour_at_most(
    gateway: httpx.Client, mail: Mail
) -> None:
    """A declined card costs nothing to try: without a share per address, anybody could have
    the shop mail anyone without end, from its own sender."""
    email = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    orders = [
        place(gateway, STICKERS, email=email, payment_method="pm_card_chargeDeclined")
        for _ in range(FAILED_MAILS_PER_HOUR)
    ]
    for order_id in orders:  # each mailed once (the after-test check counts them too)
        assert final_status(gateway, order_id)["status"] == "failed"
    response = gateway.post(
        "/api/orders",
        json={
            "customer_email": email,
            "items": STICKERS,
            "payment_method": "pm_card_chargeDeclined",
        },
    )
    one_more = response.json()["order_id"]  # not tracked: it sends no mail, on purpose
    status = final_status(gateway, one_more)
    assert status["status"] == "failed" and "email not sent" in status["message"], status
    eventually(lambda: len(mail.to(email, orders[-1])) == 1)
    assert not mail.to(email, one_more)
    assert len([m for m in mail.messages() if m["To"] == email]) == FAILED_MAILS_PER_HOUR
