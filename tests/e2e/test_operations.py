"""On call: a step that cannot succeed by retrying (Stripe answering 500 to everything) pauses
instead of retrying forever; the operator sees it on the order's page with the last error, the
alert's expression fires in Prometheus, and once Stripe is back, Resume finishes the order with
one charge and one mail, the action recorded with the order."""

import httpx

from shop.dev.stack import Stack

from .helpers import customer, eventually, final_status, place
from .test_metrics import query, rule_expressions

STICKERS = [{"product_id": "sticker-pack", "quantity": 1}]


def unfinished(gateway: httpx.Client, admin: dict[str, str], order_id: str) -> list[dict]:
    response = gateway.get(f"/api/admin/orders/{order_id}/invocations", headers=admin)
    return response.json()["invocations"] if response.status_code == 200 else []


def paused_order(stack: Stack, gateway: httpx.Client, admin: dict[str, str]) -> tuple[str, dict]:
    """An order placed while Stripe answers 500 to everything (left so: the test clears it),
    once its failing step has paused: its id and that invocation."""
    httpx.put(
        f"{stack.stripe_url}/_emulator/faults", json={"fail_next": 100_000}
    ).raise_for_status()
    order_id = place(gateway, STICKERS, email=customer())

    def paused() -> list[dict] | None:
        return [i for i in unfinished(gateway, admin, order_id) if i["status"] == "paused"] or None

    return order_id, eventually(paused, timeout=120, what="the failing step paused")[0]


def test_a_step_that_keeps_failing_pauses_until_an_operator_resumes_it(
    stack: Stack, gateway: httpx.Client, admin: dict[str, str]
) -> None:
    order_id, stuck = paused_order(stack, gateway, admin)
    assert stuck["target"] == "Payments/authorize" and stuck["last_failure"], stuck
    page = gateway.get(f"/admin/orders/{order_id}", headers=admin).text
    assert stuck["invocation_id"] in page and "paused" in page and ">Resume<" in page
    firing = eventually(
        lambda: query(stack, rule_expressions()["InvocationsPaused"]),
        timeout=60,
        what="InvocationsPaused's expression true in Prometheus",
    )
    assert {s["metric"]["restate_service"] for s in firing} == {"Payments"}

    httpx.put(f"{stack.stripe_url}/_emulator/faults", json={}).raise_for_status()
    resume = {"action": "resume", "invocation_id": stuck["invocation_id"]}
    done = gateway.post(f"/api/admin/orders/{order_id}/actions", json=resume, headers=admin)
    assert done.status_code == 200 and done.json()["outcome"] == "done", done.text
    assert final_status(gateway, order_id, timeout=60)["status"] == "completed"
    record = gateway.get(f"/api/admin/orders/{order_id}", headers=admin).json()
    [action] = record["actions"]
    assert (action["action"], action["target"], action["actor"]) == (
        "resume",
        "Payments/authorize",
        "api (Bearer token)",
    )
    # The after-test check holds it to one charge and one mail.


def test_killing_a_paused_call_fails_the_order_which_gives_back_what_it_holds(
    stack: Stack, gateway: httpx.Client, admin: dict[str, str]
) -> None:
    """The last resort, on a call (not the order's run): the order's step gets a terminal
    error, and the order unwinds as after any failure, mailing the customer."""
    order_id, stuck = paused_order(stack, gateway, admin)
    httpx.put(f"{stack.stripe_url}/_emulator/faults", json={}).raise_for_status()
    kill = {"action": "kill", "invocation_id": stuck["invocation_id"]}
    done = gateway.post(f"/api/admin/orders/{order_id}/actions", json=kill, headers=admin)
    assert done.status_code == 200 and done.json()["outcome"] == "done", done.text
    final = final_status(gateway, order_id, timeout=60)
    assert (final["status"], final["reason"]) == ("failed", "killed"), final
    # The after-test check holds it to nothing charged, no stock taken, one mail.


def test_an_action_on_another_orders_invocation_does_nothing(
    gateway: httpx.Client, admin: dict[str, str]
) -> None:
    order_id = place(gateway, STICKERS)
    final_status(gateway, order_id)
    eventually(lambda: gateway.get(f"/api/admin/orders/{order_id}", headers=admin).is_success)
    kill = {"action": "kill", "invocation_id": "inv_1aXbogusInvocation0000000000"}
    done = gateway.post(f"/api/admin/orders/{order_id}/actions", json=kill, headers=admin)
    assert done.status_code == 200 and done.json()["outcome"].startswith("not done"), done.text
    bad = gateway.post(
        f"/api/admin/orders/{order_id}/actions", json={"action": "drop"}, headers=admin
    )
    assert bad.status_code == 422 and {"action", "invocation_id"} <= set(bad.json()["fields"])
    assert gateway.post(f"/api/admin/orders/{order_id}/actions", json=kill).status_code == 401
