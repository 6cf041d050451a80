"""An order belongs to whoever placed it: random ids, Idempotency-Keys that cannot be used to
reach another customer's order, and a secret that changing (cancelling) an order takes."""

import concurrent.futures
import hashlib
import uuid

import httpx
import stripe

from ..invariants import of_order
from .helpers import SECRETS, OrderBody, cancel, customer, final_status, place, track

MUG = [{"product_id": "mug-classic", "quantity": 1}]


def post(gateway: httpx.Client, body: OrderBody, key: str) -> httpx.Response:
    return gateway.post("/api/orders", json=body, headers={"Idempotency-Key": key})


def slow_authorization(stack) -> None:
    """The next Stripe call takes 1.5 s, so the order is still cancellable meanwhile."""
    httpx.put(f"{stack.stripe_url}/_emulator/faults", json={"latency_next": 1, "latency_ms": 1500})


def test_a_key_reused_for_another_request_is_refused_and_reveals_nothing(
    gateway: httpx.Client, restate_admin, stack
) -> None:
    key = "cart-1-" + uuid.uuid4().hex[:6]  # a predictable key, as careless clients pick
    alice: OrderBody = {"customer_email": customer(), "items": MUG}
    slow_authorization(stack)
    first = post(gateway, alice, key)
    assert first.status_code == 202, first.text
    order_id = track(first.json()["order_id"], alice["customer_email"])
    assert order_id != "ord_" + hashlib.sha256(key.encode()).hexdigest()[:24]

    mallory: OrderBody = {
        "customer_email": customer(),
        "items": [{"product_id": "sticker-pack", "quantity": 1}],
    }
    second = post(gateway, mallory, key)
    assert second.status_code == 422, second.text
    assert "Idempotency-Key" in second.json()["fields"]
    assert order_id not in second.text and alice["customer_email"] not in second.text
    # Knowing the id (a tracking link) is not enough to cancel: the answer is an unknown id's.
    for headers in ({}, {"Order-Secret": "osec_guess"}):
        refused = gateway.post(f"/api/orders/{order_id}/cancel", headers=headers)
        assert (refused.status_code, refused.json()) == (404, {"error": f"no order {order_id}"})

    assert final_status(gateway, order_id)["status"] == "completed"  # Alice's, untouched
    again = post(gateway, alice, key)  # Alice's client retries: the same order, once
    assert again.status_code == 202
    assert again.json() == {k: v for k, v in first.json().items() if k != "order_secret"}
    assert restate_admin.workflow_runs_of(order_id) == 1


def test_cancel_needs_the_orders_own_secret(gateway: httpx.Client, stack) -> None:
    slow_authorization(stack)
    order_id = place(gateway, MUG)
    other = place(gateway, MUG)
    for secret in (None, "osec_wrong", SECRETS[other]):
        headers = {"Order-Secret": secret} if secret else {}
        assert gateway.post(f"/api/orders/{order_id}/cancel", headers=headers).status_code == 404
    response = cancel(gateway, order_id)
    assert response.status_code == 202, response.text
    assert final_status(gateway, order_id)["status"] == "cancelled"


def test_two_first_submissions_with_one_key_make_one_order(
    gateway: httpx.Client, stripe_api: stripe.StripeClient, restate_admin
) -> None:
    body: OrderBody = {"customer_email": customer(), "items": MUG}
    key = f"race-{uuid.uuid4().hex}"
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(gateway, body, key), range(8)))
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["order_id"] for a in answers}) == 1
    # The secret went to the one request that placed the order, to none of the replays.
    assert len([a for a in answers if "order_secret" in a.json()]) == 1
    order_id = track(answers[0].json()["order_id"], body["customer_email"])
    assert final_status(gateway, order_id)["status"] == "completed"
    assert restate_admin.workflow_runs_of(order_id) == 1
    intents = stripe_api.v1.payment_intents.list(params=of_order(order_id))
    assert len(intents.data) == 1


def test_what_anyone_with_the_id_sees_has_no_personal_data(gateway: httpx.Client, stack) -> None:
    email = customer()
    order_id = place(gateway, MUG, email=email)
    assert final_status(gateway, order_id)["status"] == "completed"
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as stranger:
        seen = [
            stranger.get(f"/api/orders/{order_id}").text,
            stranger.get(f"/api/orders/{order_id}/events").text,
            stranger.get(f"/orders/{order_id}").text,
            stranger.get(f"/orders/{order_id}/stream").text,
        ]
    assert all("completed" in text for text in seen)
    assert not [text for text in seen if email in text or "pm_card" in text]


def test_an_operator_cancels_any_order_without_its_secret(
    gateway: httpx.Client, admin: dict[str, str], stack
) -> None:
    slow_authorization(stack)
    order_id = place(gateway, MUG)
    assert gateway.post(f"/api/admin/orders/{order_id}/cancel").status_code == 401
    response = gateway.post(f"/api/admin/orders/{order_id}/cancel", headers=admin)
    assert response.status_code == 202, response.text
    assert final_status(gateway, order_id)["status"] == "cancelled"


def test_a_keyed_order_can_be_read_and_cancelled_the_moment_its_id_is_returned(
    gateway: httpx.Client,
) -> None:
    """The key's record starts the run with a queued message; the 202 must not come before
    Restate knows the run, or the customer's next request meets a 404."""
    for _ in range(5):
        body: OrderBody = {"customer_email": customer(), "items": MUG}
        placed = post(gateway, body, f"at-once-{uuid.uuid4().hex}")
        assert placed.status_code == 202, placed.text
        order_id = track(placed.json()["order_id"], body["customer_email"])
        SECRETS[order_id] = placed.json()["order_secret"]
        assert gateway.get(f"/api/orders/{order_id}").status_code == 200
        assert cancel(gateway, order_id).status_code in {202, 409}, order_id
        assert final_status(gateway, order_id)["status"] in {"cancelled", "completed"}


def test_a_replay_of_someone_elses_key_and_body_gets_no_secret(
    gateway: httpx.Client, stack
) -> None:
    """Whoever guesses (or sees) a key and body gets the order's id, as the status link would
    show it, but not the right to cancel: the replay answers without the secret."""
    key = "cart-2-" + uuid.uuid4().hex[:6]  # predictable, as careless clients pick
    body: OrderBody = {"customer_email": customer(), "items": MUG}
    slow_authorization(stack)
    first = post(gateway, body, key)
    order_id = track(first.json()["order_id"], body["customer_email"])
    SECRETS[order_id] = first.json()["order_secret"]
    replay = post(gateway, body, key)
    assert replay.status_code == 202 and replay.json()["order_id"] == order_id
    assert "order_secret" not in replay.json() and SECRETS[order_id] not in replay.text
    assert final_status(gateway, order_id)["status"] == "completed"
