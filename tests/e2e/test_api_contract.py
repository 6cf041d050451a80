"""The gateway answers as its OpenAPI document says.

schemathesis reads /openapi.json from the running stack and runs as its CLI does (examples,
coverage, fuzzing, then stateful sequences that feed one answer into the next request), every
operation but the SSE streams (they end only with the order), the admin ones with the admin
token, and all its checks on every answer: no server error, and no status code, content type,
header or body the document does not list.

One check is told what the document cannot say: `positive_data_acceptance` (a request the
schema allows must be accepted) also takes a 422 from the three operations whose rules a JSON
schema cannot state: POST /api/orders (one Idempotency-Key names one request, and a product's
lines add up to at most 100), the HTML forms, whose fields FastAPI does not see, the order
book's list and export (a `cursor` is only one the API gave out, `until` comes after
`since`), a refund (one Idempotency-Key names one request; a reason is not blank), a
reconciliation (`until` comes after `since`, at most 31 days later) and the order page's
action buttons (a form); and a
400 from POST /webhooks/stripe, which takes only events signed with the webhook secret (an
HMAC of the exact body that no generated request can carry).

The requests are real: generated orders are placed (past MAX_ORDERS_IN_FLIGHT, shed with 429),
cancelled, stock is set. The test waits for those orders to end and puts the stock back as it
was, so the tests after it start from the same shop.
"""

import json
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

from shop.dev.stack import Stack

from .helpers import final_status

MAX_EXAMPLES = 50  # per operation and phase: the run takes 20-40 s
SSE = r"/(events|stream)$"
# The defaults of positive_data_acceptance, and 422.
ACCEPTED_OR_422 = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
SIGNED_ONLY = ["2xx", "400"]  # a generated event carries no valid Stripe-Signature


def config(admin_token: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "headers": {"Authorization": f"Bearer {admin_token}"},
            "request-timeout": 15,
            "continue-on-failure": True,  # every failure of an operation, not just its first
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "operations": [
                {
                    "include-name": [
                        "POST /api/orders",
                        "POST /orders",
                        "POST /admin/stock/{sku}",
                        "GET /api/admin/orders",
                        "GET /api/admin/orders.csv",
                        "POST /api/admin/orders/{order_id}/refunds",
                        "POST /admin/orders/{order_id}/refund",
                        "POST /api/admin/reconciliations",
                        "POST /admin/reconcile",
                        "POST /admin/orders/{order_id}/act",
                    ],
                    "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED_OR_422}},
                },
                {
                    "include-name": ["POST /webhooks/stripe"],
                    "checks": {"positive_data_acceptance": {"expected-statuses": SIGNED_ONLY}},
                },
            ],
        }
    )


def test_every_answer_is_one_the_document_lists(
    stack: Stack, gateway: httpx.Client, admin: dict[str, str], request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params["stack"] != "normal":
        pytest.skip("the gateway's contract does not depend on how Restate runs: checked once")
    stock = {p["product_id"]: p["available"] for p in gateway.get("/api/products").json()}
    document = schemathesis.openapi.from_url(
        f"{stack.gateway_url}/openapi.json", config=config(stack.shared_env()["ADMIN_TOKEN"])
    )
    failures, placed, answered = run(document.exclude(path_regex=SSE))
    print(
        f"schemathesis: {sum(answered.values())} requests, answers {dict(sorted(answered.items()))}"
    )

    for order_id in placed:  # the generated orders end, then the stock is as it was
        final_status(gateway, order_id, timeout=90)
    for sku, available in stock.items():
        restock = {"quantity": available}
        response = gateway.put(f"/api/admin/products/{sku}/stock", json=restock, headers=admin)
        response.raise_for_status()

    assert not failures, "\n\n".join(failures)
    assert answered, "schemathesis sent nothing"


def run(schema: Any) -> tuple[list[str], list[str], dict[int, int]]:
    """The failures found (readably, with a curl command to reproduce each), the orders the
    run placed, and how many answers it got of each status code."""
    failures: list[str] = []
    placed: list[str] = []
    answered: dict[int, int] = {}
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            recorder = event.recorder
            for interaction in recorder.interactions.values():
                if (answer := interaction.response) is None:
                    continue
                answered[answer.status_code] = answered.get(answer.status_code, 0) + 1
                sent = interaction.request
                if (sent.method, httpx.URL(sent.uri).path, answer.status_code) == (
                    "POST",
                    "/api/orders",
                    202,
                ):
                    placed.append(json.loads(answer.content)["order_id"])
            for checks in recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure, sample = check.failure_info.failure, check.failure_info.code_sample
                        failures.append(
                            f"{recorder.label}: {check.name}: {failure.title}\n"
                            f"{failure.message}\n{sample}"
                        )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"schemathesis could not run: {event!r}")
        elif isinstance(event, events.EngineFinished):
            failures.extend(f"{failure.title}: {failure.message}" for failure in event.failures)
            print(f"schemathesis: {event.stop_reason} after {event.running_time:.1f}s")
    return failures, sorted(set(placed)), answered
