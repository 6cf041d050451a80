"""Cards whose bank asks the customer to confirm the payment (3-D Secure): the order shows
where to confirm, waits durably for Stripe's webhook, raced against a timeout and the
customer's cancel, and then asks Stripe how the payment stands. The autouse invariant check
(conftest) runs after each of these too: money kept only for completed orders, one email per
order, stock conserved."""

import functools
import json
import secrets
import time
from typing import Any

import httpx
import pytest
import redis
import stripe
from httpx_sse import connect_sse

from shop.dev.stack import Stack
from shop.shared import progress_feed
from shop.shared.contracts.fulfilment import OrderStatus

from ..invariants import of_order
from .conftest import PAYMENT_AUTH_TIMEOUT_SECONDS, Mail, Restate
from .helpers import available, cancel, customer, eventually, final_status, place, status_of

AUTH_CARDS = ["pm_card_threeDSecure2Required", "pm_card_authenticationRequired"]
AUTH_CARD = AUTH_CARDS[0]
STICKERS = [{"product_id": "sticker-pack", "quantity": 1}]
CAPTURABLE = "payment_intent.amount_capturable_updated"
FAILED = "payment_intent.payment_failed"


def intents_of(stripe_api: stripe.StripeClient, order_id: str) -> list[stripe.PaymentIntent]:
    return stripe_api.v1.payment_intents.list(params=of_order(order_id)).data


def waiting_for_the_bank(gateway: httpx.Client, order_id: str) -> str:
    """Waits until the order asks the customer to confirm with their bank: the URL it shows."""

    def action_url() -> str | None:
        status = status_of(gateway, order_id)
        assert status["status"] in ("pending", "running"), status
        return status.get("action_url") if status["step"] == "authenticating" else None

    return eventually(action_url)


def intent_id(action_url: str) -> str:
    return action_url.rstrip("/").rsplit("/", 1)[1]


def bank_answers(stack: Stack, action_url: str, outcome: str) -> None:
    """The customer completes (or fails) the check on the bank's page: the emulator's test API."""
    pi = intent_id(action_url)
    response = httpx.post(f"{stack.stripe_url}/_emulator/3ds/{pi}", json={"outcome": outcome})
    assert response.status_code == 200, response.text


def faults(stack: Stack, **switches: int) -> None:
    httpx.put(f"{stack.stripe_url}/_emulator/faults", json=switches).raise_for_status()


def events_of(stack: Stack, pi: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{stack.stripe_url}/_emulator/events", params={"payment_intent": pi})
    response.raise_for_status()
    body = response.json()
    return body["data"] if isinstance(body, dict) else body


def event_of(stack: Stack, pi: str, kind: str) -> dict[str, Any]:
    return eventually(lambda: next((e for e in events_of(stack, pi) if e["type"] == kind), None))


def delivered(stack: Stack, pi: str, kind: str) -> bool:
    """Whether the gateway acknowledged (2xx) every delivery of the intent's `kind` event."""
    events = [e for e in events_of(stack, pi) if e["type"] == kind]
    return bool(events) and all(e["pending_webhooks"] == 0 for e in events)


def handled(restate_admin: Restate, order_id: str) -> list[str]:
    """The status of each event Restate was handed for the order (one per event id)."""
    rows = restate_admin.query(
        "SELECT status FROM sys_invocation "
        f"WHERE target = 'OrderFulfilment/{order_id}/payment_authenticated'"
    )
    return [str(row["status"]) for row in rows]


def all_handled(restate_admin: Restate, order_id: str, events: int) -> bool:
    statuses = handled(restate_admin, order_id)
    return len(statuses) == events and set(statuses) == {"completed"}


def webhook_secret(stack: Stack) -> str:
    return stack.shared_env().get("STRIPE_WEBHOOK_SECRET", "whsec_shop_dev")


def signed_event(
    stack: Stack,
    kind: str,
    order_id: str,
    pi: str,
    secret: str | None = None,
    at: int | None = None,
) -> tuple[str, str]:
    """A Stripe event about the order's intent, and its Stripe-Signature (by the stripe SDK's
    own helper), as Stripe would send it, or as a forger would."""
    intent = {"id": pi, "object": "payment_intent", "metadata": {"order_id": order_id}}
    event = {
        "id": f"evt_test_{secrets.token_hex(8)}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": intent},
    }
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(
        payload, secret or webhook_secret(stack), at
    )
    return payload, header


def send_webhook(stack: Stack, payload: str, signature: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return httpx.post(f"{stack.gateway_url}/webhooks/stripe", content=payload, headers=headers)


def assert_charged_once(stripe_api: stripe.StripeClient, order_id: str, cents: int) -> None:
    [intent] = intents_of(stripe_api, order_id)  # the same intent, before and after the bank
    assert (intent.status, intent.amount_received) == ("succeeded", cents)


@pytest.mark.parametrize("card", AUTH_CARDS)
def test_the_customer_confirms_with_the_bank_and_the_order_completes(
    stack: Stack, gateway: httpx.Client, stripe_api: stripe.StripeClient, card: str
) -> None:
    order_id = place(gateway, STICKERS, payment_method=card)
    seen: list[dict[str, Any]] = []
    with connect_sse(gateway, "GET", f"/api/orders/{order_id}/events") as source:
        for event in source.iter_sse():
            if not event.data:
                continue  # a ping
            seen.append({"id": int(event.id), "event": event.event, **event.json()})
            if event.json().get("action_url"):  # the stream carries it like any other step
                bank_answers(stack, event.json()["action_url"], "complete")
            if event.event != "progress":
                break
    ids = [e["id"] for e in seen]
    assert ids == sorted(set(ids)), "each step once, in order"
    [asking] = [e for e in seen if e.get("action_url")]
    assert asking["step"] == "authenticating" and asking["cancellable"]
    assert "Confirm the payment with your bank" in asking["message"]
    assert seen[-1]["event"] == "complete"
    final = final_status(gateway, order_id)
    assert final["status"] == "completed" and "action_url" not in final
    assert_charged_once(stripe_api, order_id, 400)


def test_a_failed_check_fails_the_order_and_voids_the_payment(
    stack: Stack, gateway: httpx.Client, stripe_api: stripe.StripeClient, mail: Mail
) -> None:
    email, before = customer(), available(gateway, "sticker-pack")
    order_id = place(gateway, STICKERS, payment_method=AUTH_CARD, email=email)
    bank_answers(stack, waiting_for_the_bank(gateway, order_id), "fail")
    final = final_status(gateway, order_id)
    assert final["status"] == "failed", final
    assert final["reason"] == "payment authentication failed"
    assert [i.status for i in intents_of(stripe_api, order_id)] == ["canceled"]
    assert available(gateway, "sticker-pack") == before
    [message] = eventually(lambda: mail.received(email, order_id)).values()
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert "payment authentication failed" in body.decode()


def test_nobody_confirms_and_the_order_gives_up_at_the_timeout(
    stack: Stack, gateway: httpx.Client, stripe_api: stripe.StripeClient
) -> None:
    order_id = place(gateway, STICKERS, payment_method=AUTH_CARD)
    action_url = waiting_for_the_bank(gateway, order_id)
    final = final_status(gateway, order_id, timeout=PAYMENT_AUTH_TIMEOUT_SECONDS + 30)
    assert final["status"] == "failed", final
    wanted = f"payment not confirmed with the bank within {PAYMENT_AUTH_TIMEOUT_SECONDS:g} s"
    assert final["reason"] == wanted
    assert [i.status for i in intents_of(stripe_api, order_id)] == ["canceled"]
    # The customer who comes back too late cannot confirm a voided payment.
    late = httpx.post(
        f"{stack.stripe_url}/_emulator/3ds/{intent_id(action_url)}", json={"outcome": "complete"}
    )
    assert late.status_code == 400
    assert final_status(gateway, order_id)["status"] == "failed"


def test_the_customer_cancels_while_the_bank_waits(
    stack: Stack, gateway: httpx.Client, stripe_api: stripe.StripeClient
) -> None:
    before = available(gateway, "sticker-pack")
    order_id = place(gateway, STICKERS, payment_method=AUTH_CARD)
    waiting_for_the_bank(gateway, order_id)
    response = cancel(gateway, order_id)
    assert response.status_code in (200, 202), response.text
    final = final_status(gateway, order_id)
    assert final["status"] == "cancelled", final
    assert [i.status for i in intents_of(stripe_api, order_id)] == ["canceled"]
    assert available(gateway, "sticker-pack") == before
    assert cancel(gateway, order_id).status_code == 200  # cancelled already: the same answer


def test_an_event_delivered_twice_then_again_late_changes_nothing(
    stack: Stack, gateway: httpx.Client, stripe_api: stripe.StripeClient, restate_admin: Restate
) -> None:
    order_id = place(gateway, STICKERS, payment_method=AUTH_CARD)
    action_url = waiting_for_the_bank(gateway, order_id)
    pi = intent_id(action_url)
    faults(stack, webhook_duplicate_next=1)
    bank_answers(stack, action_url, "complete")
    assert final_status(gateway, order_id)["status"] == "completed"
    eventually(lambda: delivered(stack, pi, CAPTURABLE))
    # Late: the same event again (signed afresh, as Stripe signs each attempt), then a
    # failure-typed event about the intent, after the order is complete.
    event = json.dumps(event_of(stack, pi, CAPTURABLE))
    again = stripe.WebhookSignature.generate_signature_header(event, webhook_secret(stack))
    assert send_webhook(stack, event, again).status_code == 200
    late_failure = send_webhook(stack, *signed_event(stack, FAILED, order_id, pi))
    assert late_failure.status_code == 200, late_failure.text
    # Each event id is handed to the order once, however often it comes; both are done.
    eventually(lambda: all_handled(restate_admin, order_id, events=2))
    final = final_status(gateway, order_id)
    assert final["status"] == "completed" and "reason" not in final, final
    assert_charged_once(stripe_api, order_id, 400)


def test_events_out_of_order_stripe_decides(
    stack: Stack, gateway: httpx.Client, stripe_api: stripe.StripeClient, restate_admin: Restate
) -> None:
    """The confirmation's event is held back; a failure-typed event about the same intent comes
    first. The order asks Stripe, which says the payment is confirmed: it completes."""
    order_id = place(gateway, STICKERS, payment_method=AUTH_CARD)
    action_url = waiting_for_the_bank(gateway, order_id)
    pi = intent_id(action_url)
    faults(stack, webhook_delay_next=1, webhook_delay_ms=3000)
    bank_answers(stack, action_url, "complete")
    first = send_webhook(stack, *signed_event(stack, FAILED, order_id, pi))
    assert first.status_code == 200 and first.json()["delivered"], first.text
    assert final_status(gateway, order_id)["status"] == "completed"
    eventually(lambda: delivered(stack, pi, CAPTURABLE))  # the held-back one, late
    eventually(lambda: all_handled(restate_admin, order_id, events=2))
    assert final_status(gateway, order_id)["status"] == "completed"
    assert_charged_once(stripe_api, order_id, 400)


def test_the_event_waits_in_restate_while_fulfilment_is_down(
    stack: Stack, gateway: httpx.Client, stripe_api: stripe.StripeClient, restate_admin: Restate
) -> None:
    order_id = place(gateway, STICKERS, payment_method=AUTH_CARD)
    action_url = waiting_for_the_bank(gateway, order_id)
    pi = intent_id(action_url)
    stack.crash("fulfilment")
    try:
        bank_answers(stack, action_url, "complete")
        # The gateway acknowledges at once: Restate holds the event for the order.
        eventually(lambda: delivered(stack, pi, CAPTURABLE))
        assert len(handled(restate_admin, order_id)) == 1
        assert not all_handled(restate_admin, order_id, events=1)
    finally:
        assert "started" in stack.ctl("start", "fulfilment")
    eventually(lambda: all_handled(restate_admin, order_id, events=1), timeout=60)
    assert final_status(gateway, order_id, timeout=90)["status"] == "completed"
    assert_charged_once(stripe_api, order_id, 400)


@pytest.mark.parametrize(
    "forgery",
    ["wrong secret", "stale timestamp", "garbled signature", "no signature", "body changed"],
)
def test_a_forged_webhook_is_refused_and_changes_nothing(
    stack: Stack, gateway: httpx.Client, stripe_api: stripe.StripeClient, forgery: str
) -> None:
    order_id = place(gateway, STICKERS, payment_method=AUTH_CARD)
    action_url = waiting_for_the_bank(gateway, order_id)
    pi = intent_id(action_url)
    payload, signature = {
        "wrong secret": lambda: signed_event(stack, CAPTURABLE, order_id, pi, "whsec_forged"),
        "stale timestamp": lambda: signed_event(
            stack, CAPTURABLE, order_id, pi, at=int(time.time()) - 600
        ),
        "garbled signature": lambda: (signed_event(stack, CAPTURABLE, order_id, pi)[0], "t=1,v1=0"),
        "no signature": lambda: (signed_event(stack, CAPTURABLE, order_id, pi)[0], None),
        "body changed": lambda: (
            signed_event(stack, FAILED, order_id, pi)[0],
            signed_event(stack, CAPTURABLE, order_id, pi)[1],
        ),
    }[forgery]()
    response = send_webhook(stack, payload, signature)
    assert response.status_code == 400, response.text
    assert "webhook refused" in response.json()["error"]
    # Had the order been woken, it would have asked Stripe, found the payment unconfirmed and
    # failed; it still waits, and completes when the customer confirms.
    assert status_of(gateway, order_id)["step"] == "authenticating"
    bank_answers(stack, action_url, "complete")
    assert final_status(gateway, order_id)["status"] == "completed"
    assert_charged_once(stripe_api, order_id, 400)


def test_a_genuine_event_about_no_known_order_is_acknowledged_and_creates_nothing(
    stack: Stack, gateway: httpx.Client, restate_admin: Restate
) -> None:
    stranger = f"ord_{secrets.token_hex(12)}"
    response = send_webhook(stack, *signed_event(stack, CAPTURABLE, stranger, "pi_unknown"))
    assert response.status_code == 200, response.text
    assert response.json()["delivered"] is False
    # Nothing was invoked for that key (checked before the status read below, which is one).
    invocations = restate_admin.query(
        f"SELECT count(*) AS n FROM sys_invocation WHERE target_service_key = '{stranger}'"
    )
    assert invocations[0]["n"] == 0
    assert gateway.get(f"/api/orders/{stranger}").status_code == 404


def test_a_forged_push_through_valkey_puts_no_link_on_the_page_nor_ends_its_stream(
    stack: Stack, gateway: httpx.Client
) -> None:
    """Valkey carries hints: a `javascript:` link to the bank is dropped, and the stream ends
    on the durable final status only, not on a pushed one claiming a later step."""
    order_id = place(gateway, STICKERS, payment_method=AUTH_CARD)
    action_url = waiting_for_the_bank(gateway, order_id)
    now = OrderStatus.model_validate(
        {**status_of(gateway, order_id), "seq": 1, "cancellable": True}
    )
    valkey = redis.Redis(port=stack.ports.valkey)
    forged = [
        now.model_copy(update={"seq": 10**6, "action_url": "javascript:alert(document.cookie)"}),
        now.model_copy(
            update={"seq": 10**6 + 1, "status": "completed", "step": "completed", "percent": 100}
        ),
    ]
    with gateway.stream("GET", f"/orders/{order_id}/stream") as stream:
        lines = stream.iter_lines()
        eventually(lambda: next(lines).startswith("data:"))  # the durable snapshot
        for status in forged:
            valkey.publish(progress_feed.CHANNEL, status.model_dump_json())
        bank_answers(stack, action_url, "complete")
        received = list(lines)
    assert not [line for line in received if "javascript:" in line]
    assert "event: done" in received
    assert final_status(gateway, order_id)["status"] == "completed"


def test_an_early_wake_while_the_bank_still_waits_only_starts_another_wait(
    stack: Stack,
    gateway: httpx.Client,
    stripe_api: stripe.StripeClient,
    restate_admin: Restate,
) -> None:
    """A wake with no confirmation behind it (forged on Restate's ingress, or an event that
    overtook the customer): Stripe still says requires_action, so the order waits on, and the
    customer's real confirmation completes it."""
    order_id = place(gateway, STICKERS, payment_method=AUTH_CARD)
    action_url = waiting_for_the_bank(gateway, order_id)
    for n in range(2):
        forged = {"event_id": f"evt_forged_{n}_{secrets.token_hex(4)}", "type": CAPTURABLE}
        url = f"{stack.ingress_url}/OrderFulfilment/{order_id}/payment_authenticated"
        assert httpx.post(url, json=forged).status_code == 200
        eventually(functools.partial(in_round, restate_admin, order_id, n + 1))  # it waits again
    assert status_of(gateway, order_id)["step"] == "authenticating"
    bank_answers(stack, action_url, "complete")
    assert final_status(gateway, order_id)["status"] == "completed"
    assert_charged_once(stripe_api, order_id, 400)


def in_round(restate_admin: Restate, order_id: str, n: int) -> bool:
    return auth_round(restate_admin, order_id) == n


def auth_round(restate_admin: Restate, order_id: str) -> int:
    """Which wait for the bank the order is in (0: the first)."""
    rows = restate_admin.query(
        "SELECT value_utf8 FROM state WHERE service_name = 'OrderFulfilment' "
        f"AND service_key = '{order_id}' AND key = 'auth-round'"
    )
    return int(rows[0]["value_utf8"]) if rows else 0
