"""The happy path, checked where a customer or an operator would look."""

import httpx
import stripe
from httpx_sse import connect_sse

from shop.dev.stack import Stack

from ..invariants import of_order
from .conftest import Mail
from .helpers import OrderBody, available, customer, final_status, place, track


def test_order_completes_with_one_charge_one_email_and_stock_taken(
    gateway: httpx.Client, stripe_api: stripe.StripeClient, mail: Mail
) -> None:
    email = customer()
    mugs, caps = available(gateway, "mug-classic"), available(gateway, "cap-navy")

    order_id = place(
        gateway,
        [{"product_id": "mug-classic", "quantity": 2}, {"product_id": "cap-navy", "quantity": 1}],
        email=email,
    )
    status = final_status(gateway, order_id)

    assert status["status"] == "completed", status
    assert status["percent"] == 100
    intents = stripe_api.v1.payment_intents.list(params=of_order(order_id))
    assert [(i.status, i.amount, i.currency) for i in intents.data] == [("succeeded", 4200, "eur")]
    assert "payment_intent_id" not in status["result"]  # for operators, not whoever has the id
    messages = mail.to(email, order_id)
    assert len(messages) == 1
    body = messages[0].get_payload()
    assert order_id in body and "Classic mug" in body and "Navy cap" in body
    assert available(gateway, "mug-classic") == mugs - 2
    assert available(gateway, "cap-navy") == caps - 1


def test_prices_come_from_the_catalog_not_the_client(
    gateway: httpx.Client, stripe_api: stripe.StripeClient
) -> None:
    response = gateway.post(
        "/api/orders",
        json={
            "customer_email": customer(),
            "items": [{"product_id": "sticker-pack", "quantity": 1, "price_cents": 1}],
        },
    )
    assert response.status_code == 422  # unknown fields are refused, not ignored
    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 3}])
    assert final_status(gateway, order_id)["status"] == "completed"
    intents = stripe_api.v1.payment_intents.list(params=of_order(order_id))
    assert [i.amount for i in intents.data] == [1200]


def test_event_stream_gives_snapshot_then_progress_then_complete(
    gateway: httpx.Client,
) -> None:
    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 1}])
    with connect_sse(gateway, "GET", f"/api/orders/{order_id}/events") as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = [
            (e.event, int(e.id), e.json()) for e in source.iter_sse() if e.data
        ]  # pings carry no data

    names = [name for name, _, _ in events]
    ids = [event_id for _, event_id, _ in events]
    assert names[-1] == "complete" and set(names[:-1]) == {"progress"}, names
    assert ids == sorted(set(ids)), "ids strictly increase, nothing twice"
    assert events[-1][2]["status"] == "completed" and events[-1][2]["percent"] == 100
    percents = [data["percent"] for _, _, data in events]
    assert percents == sorted(percents)


def test_stream_of_a_finished_order_is_its_final_event(gateway: httpx.Client) -> None:
    order_id = place(gateway, [{"product_id": "sticker-pack", "quantity": 1}])
    final_status(gateway, order_id)
    with connect_sse(gateway, "GET", f"/api/orders/{order_id}/events") as source:
        events = [e for e in source.iter_sse() if e.data]  # pings carry no data
    assert [e.event for e in events] == ["complete"]
    last = events[0].id
    # A browser that reconnects after the final event is told there is nothing more.
    response = gateway.get(f"/api/orders/{order_id}/events", headers={"Last-Event-ID": last})
    assert response.status_code == 204


def test_same_idempotency_key_is_one_order_one_charge(
    gateway: httpx.Client, stripe_api: stripe.StripeClient, restate_admin
) -> None:
    body: OrderBody = {
        "customer_email": customer(),
        "items": [{"product_id": "mug-classic", "quantity": 1}],
    }
    headers = {"Idempotency-Key": f"e2e-{customer()}"}
    first = gateway.post("/api/orders", json=body, headers=headers)
    second = gateway.post("/api/orders", json=body, headers=headers)
    assert first.status_code == second.status_code == 202
    order_id = track(first.json()["order_id"], body["customer_email"])
    assert second.json()["order_id"] == order_id
    assert final_status(gateway, order_id)["status"] == "completed"
    intents = stripe_api.v1.payment_intents.list(params=of_order(order_id))
    assert len(intents.data) == 1
    assert restate_admin.workflow_runs_of(order_id) == 1


def test_products_list_prices_and_live_stock(gateway: httpx.Client) -> None:
    products = gateway.get("/api/products").json()
    assert {p["product_id"] for p in products} >= {"mug-classic", "tee-logo", "poster-a2"}
    for p in products:
        assert {"product_id", "name", "price_cents", "currency", "available"} <= set(p)
        assert p["price_cents"] > 0 and p["available"] >= 0


def test_admin_sets_stock_with_the_token_only(gateway: httpx.Client, stack: Stack) -> None:
    url = "/api/admin/products/poster-a2/stock"
    assert gateway.put(url, json={"quantity": 7}).status_code == 401
    wrong = gateway.put(url, json={"quantity": 7}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    token = {"Authorization": f"Bearer {stack.shared_env()['ADMIN_TOKEN']}"}
    response = gateway.put(url, json={"quantity": 7}, headers=token)
    assert response.status_code == 200, response.text
    assert available(gateway, "poster-a2") == 7
    bad = gateway.put(url, json={"quantity": -1}, headers=token)
    assert bad.status_code == 422 and "quantity" in bad.json()["fields"]
    unknown = gateway.put("/api/admin/products/nope/stock", json={"quantity": 1}, headers=token)
    assert unknown.status_code == 404


def test_health_and_readiness(gateway: httpx.Client) -> None:
    assert gateway.get("/healthz").json() == {"status": "ok"}
    assert gateway.get("/readyz").json() == {"status": "ready", "live_updates": "connected"}
