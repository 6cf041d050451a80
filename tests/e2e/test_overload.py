"""More orders than the gateway may have in progress: the excess is shed at once (429 with
Retry-After) and starts nothing; every order admitted completes."""

import concurrent.futures

import httpx

from .conftest import MAX_ORDERS_IN_FLIGHT
from .helpers import customer, final_status, track


def test_orders_beyond_the_in_flight_bound_are_shed_and_the_rest_complete(
    gateway: httpx.Client, restate_admin, stack
) -> None:
    offered = MAX_ORDERS_IN_FLIGHT + 10
    # Every authorization takes 3 s, so the first orders are all still in progress.
    faults = {"latency_next": MAX_ORDERS_IN_FLIGHT, "latency_ms": 3000}
    httpx.put(f"{stack.stripe_url}/_emulator/faults", json=faults)
    runs_before = restate_admin.workflow_runs()

    def order(_: int) -> tuple[httpx.Response, str]:
        email = customer()
        body = {"customer_email": email, "items": [{"product_id": "sticker-pack", "quantity": 1}]}
        return gateway.post("/api/orders", json=body), email

    with concurrent.futures.ThreadPoolExecutor(offered) as pool:
        answers = list(pool.map(order, range(offered)))
    accepted = [track(r.json()["order_id"], e) for r, e in answers if r.status_code == 202]
    shed = [r for r, _ in answers if r.status_code == 429]
    assert len(accepted) + len(shed) == offered
    assert 0 < len(accepted) <= MAX_ORDERS_IN_FLIGHT and len(shed) >= offered - MAX_ORDERS_IN_FLIGHT
    assert all(r.headers["Retry-After"] == "1" for r in shed)
    # Shed before the body is even validated: under overload a 429 is all a request costs.
    invalid = gateway.post("/api/orders", json={"customer_email": "not an address"})
    assert invalid.status_code == 429, invalid.text
    # The storefront's form says the same to a browser, and starts nothing either.
    form = {"customer_email": customer(), "qty.sticker-pack": "1"}
    busy = gateway.post("/orders", data=form)
    assert (busy.status_code, busy.headers["Retry-After"]) == (429, "1"), busy.text
    assert "place yours again in a moment" in busy.text
    assert restate_admin.workflow_runs() - runs_before == len(accepted)
    for order_id in accepted:
        assert final_status(gateway, order_id, timeout=60)["status"] == "completed"
