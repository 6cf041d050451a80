"""What an SRE's Prometheus reads: every process's /metrics, scraped by the stack's own
Prometheus (the same alert rules as compose and k8s), with the shop's series in it after a few
orders, and every alert rule's expression parsed and evaluated by Prometheus itself."""

import functools
import re
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from shop.dev.stack import SERVICES, Stack

from ..invariants import booked
from .helpers import eventually, final_status, place, scraped
from .test_payment_auth import AUTH_CARD, bank_answers, waiting_for_the_bank

RULES = Path(__file__).resolve().parents[2] / "deploy" / "observability" / "alerts.yml"
STICKERS = [{"product_id": "sticker-pack", "quantity": 1}]
# Series each process has once an order completed and one was declined (by name: a label
# value such as result="error" appears only once something failed).
SERIES = {
    "gateway": [
        "shop_orders_started_total",
        "http_server_duration_milliseconds_count",
        "shop_sse_push_lag_seconds_bucket",
    ],
    "fulfilment": [
        "shop_orders_finished_total",
        "shop_order_duration_seconds_bucket",
        "shop_progress_pushes_total",
    ],
    "payments": ["shop_stripe_calls_total", "shop_step_duration_seconds_bucket"],
    "email": ["shop_smtp_sends_total"],
    "orders": [
        "shop_invocations",
        "shop_orders_running",
        "shop_orders_running_longest_seconds",
        "shop_book_lag_seconds",
        "shop_book_backlog",
    ],
}


def query(stack: Stack, promql: str) -> list[dict]:
    """An instant query; AssertionError (with Prometheus's words) if it does not parse."""
    response = httpx.get(f"{stack.prometheus_url}/api/v1/query", params={"query": promql})
    body = response.json()
    assert body["status"] == "success", (promql, body)
    return body["data"]["result"]


@pytest.fixture(scope="module")
def orders_done(stack: Stack, gateway: httpx.Client) -> None:
    done = place(gateway, STICKERS)
    declined = place(gateway, STICKERS, payment_method="pm_card_chargeDeclined")
    final_status(gateway, done)
    final_status(gateway, declined)


def test_every_process_serves_its_metrics(stack: Stack, orders_done: None) -> None:
    for service, names in SERIES.items():
        port = getattr(stack.ports, service)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        for name in names:
            assert re.search(rf"^{name}\b", text, re.M), (service, name)
    # Label sets stay bounded: no order id is ever a label value.
    for service in (*SERVICES, "gateway"):
        port = getattr(stack.ports, service)
        assert "ord_" not in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text


def test_every_restate_handler_is_counted_by_outcome_and_timed(
    stack: Stack, orders_done: None
) -> None:
    """Requests, errors and latency per Restate handler: the completed order's authorization
    was ok, the declined one's a terminal error, each attempt timed."""
    text = httpx.get(f"http://127.0.0.1:{stack.ports.payments}/metrics", timeout=10).text
    attempts, timed = {}, {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "shop_handler_attempts_total":
                attempts[(s.labels["handler"], s.labels["outcome"])] = s.value
            if s.name == "shop_handler_duration_seconds_count":
                timed[s.labels["handler"]] = s.value
    assert attempts[("Payments/authorize", "ok")] >= 1
    assert attempts[("Payments/authorize", "terminal")] >= 1
    assert ("Payments/capture", "error") in attempts  # there (at 0) before any error
    assert timed["Payments/authorize"] >= 2


def test_prometheus_scrapes_every_process_and_restate(stack: Stack, orders_done: None) -> None:
    def all_up() -> list[dict] | None:
        up = query(stack, "up")
        targets = {(s["metric"]["job"], s["metric"].get("service")) for s in up}
        expected = {("shop", name) for name in (*SERVICES, "gateway")}
        if not expected <= targets or all(s["metric"]["job"] != "restate" for s in up):
            return None
        return up if all(s["value"][1] == "1" for s in up) else None

    eventually(all_up, timeout=60, what="every target scraped and up")

    def has_series() -> list[str] | None:
        missing = [name for names in SERIES.values() for name in names if not query(stack, name)]
        return None if missing else ["ok"]

    eventually(has_series, timeout=60, what="the shop's series in Prometheus")
    # Both outcomes of orders_done, once Prometheus has scraped fulfilment since they ended
    # (the series' names may already be there from orders of earlier tests).
    for outcome in ('status="completed",reason="none"', 'reason="payment_declined"'):
        series = f"shop_orders_finished_total{{{outcome}}}"
        eventually(functools.partial(query, stack, series), timeout=30, what=series)


def rule_expressions() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def series_read(promql: str) -> set[str]:
    """The metric names an expression reads (label names, in matchers and in by/without
    clauses, left out)."""
    names_only = re.sub(r"\{[^}]*\}", "", promql)
    names_only = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", names_only)
    return set(re.findall(r"\b(?:shop_\w+|restate_\w+|up)\b", names_only))


def test_every_alert_rule_is_loaded_and_evaluates(stack: Stack, orders_done: None) -> None:
    """Prometheus loaded the rule file (its own parser), and each expression evaluates on
    the live series (a quiet shop: nothing pages)."""
    expressions = rule_expressions()
    assert expressions

    def loaded() -> dict | None:
        rules = httpx.get(f"{stack.prometheus_url}/api/v1/rules").json()["data"]["groups"]
        found = {r["name"]: r for g in rules for r in g["rules"] if r["type"] == "alerting"}
        return found if set(expressions) <= set(found) else None

    found = eventually(loaded, timeout=60, what="the alert rules loaded")
    for name, expr in expressions.items():
        query(stack, expr)
        assert found[name]["health"] in ("ok", "unknown"), found[name]
    # Each series a rule reads exists (a rule over a misspelt name would never fire).
    names = {name for expr in expressions.values() for name in series_read(expr)}
    for series in sorted(names):
        eventually(functools.partial(query, stack, series), timeout=30, what=f"series {series}")


def test_an_order_at_the_bank_is_counted_apart_from_orders_working(
    stack: Stack, gateway: httpx.Client, admin: dict[str, str]
) -> None:
    """The alert on orders running too long leaves out those waiting for the customer's bank:
    the workflow tells the book when the wait starts and ends, and the orders service counts
    the book's running orders by what they wait for."""
    order_id = place(gateway, STICKERS, payment_method=AUTH_CARD)
    action_url = waiting_for_the_bank(gateway, order_id)
    eventually(
        lambda: scraped(stack, "orders")['shop_orders_running{waiting="bank"}'] >= 1 or None,
        what="the order counted as waiting for the bank",
    )
    bank_answers(stack, action_url, "complete")
    assert final_status(gateway, order_id)["status"] == "completed"

    record = eventually(lambda: booked(gateway, admin, order_id), what="the order in the book")
    history = record["history"]
    assert [(h["status"], h["step"]) for h in history] == [
        ("running", "received"),
        ("running", "authenticating"),  # the wait starts
        ("running", "authorized"),  # and ends
        ("completed", "completed"),
    ]
