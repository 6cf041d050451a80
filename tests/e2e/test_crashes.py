"""A service SIGKILLed between its external call and the journal write: the supervisor
restarts it, Restate retries the step, and the provider's idempotency makes it count once."""

import httpx
import pytest
import stripe

from shop.dev.stack import Stack

from ..invariants import of_order
from .conftest import Mail
from .helpers import customer, eventually, final_status, place


def arm(stack: Stack, point: str) -> None:
    (stack.state / "crash" / point).touch()


@pytest.mark.parametrize("point", ["payments-after-authorize", "payments-after-capture"])
def test_payments_killed_after_stripe_answered_charges_once(
    stack: Stack, gateway: httpx.Client, stripe_api: stripe.StripeClient, point: str
) -> None:
    pid = stack.ctl("pid", "payments").strip()
    arm(stack, point)
    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 1}])
    assert final_status(gateway, order_id, timeout=90)["status"] == "completed"
    assert not (stack.state / "crash" / point).exists(), "the crash point was reached"
    assert stack.ctl("pid", "payments").strip() != pid, "payments was killed and restarted"
    intents = stripe_api.v1.payment_intents.list(params=of_order(order_id))
    assert [i.amount_received for i in intents.data] == [400]


def test_email_killed_after_smtp_accepted_is_one_message_for_the_customer(
    stack: Stack, gateway: httpx.Client, mail: Mail
) -> None:
    arm(stack, "email-after-send")
    email = customer()
    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 1}], email=email)
    assert final_status(gateway, order_id, timeout=90)["status"] == "completed"
    # SMTP has no idempotency key: the retried step hands the message over again, with the
    # same Message-ID, which is what mail clients deduplicate on.
    copies = eventually(lambda: mail.to(email, order_id))
    assert len({m["Message-ID"] for m in copies}) == 1
    assert len(mail.received(email, order_id)) == 1
