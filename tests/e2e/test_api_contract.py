"""The gateway answers as its OpenAPI document says.

schemathesis reads /openapi.json from the running stack and runs as its CLI does (examples,
coverage, fuzzing, then stateful sequences that feed one answer into the next request), every
operation but the SSE streams (they end only with the order), the admin ones with the admin
token, and all its checks on every answer: no server error, and no status code, content type,
header or body the document does not list. Every JSON success body is validated against the
schema of its response model (formats too): the document describes each one (checked before
the run), and every such answer of the run is counted as checked. The admin operations declare
their security schemes, so `ignored_auth` sends them again without credentials and with wrong
ones, and expects a refusal.

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
            # All checks run; these two are named for what they hold the gateway to here.
            "checks": {
                "response_schema_conformance": {"enabled": True, "validate-formats": True},
                "ignored_auth": {"enabled": True},
            },
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
    described = success_bodies(document.raw_schema)
    undescribed = {label for label, schema in described.items() if schema is None}
    assert not undescribed, f"JSON success bodies the document leaves open: {undescribed}"
    failures, placed, answered, checked = run(document.exclude(path_regex=SSE))
    print(
        f"schemathesis: {sum(answered.values())} requests, answers {dict(sorted(answered.items()))}"
    )
    print(
        "schemathesis: JSON success bodies validated, by operation:", dict(sorted(checked.items()))
    )

    for order_id in placed:  # the generated orders end, then the stock is as it was
        final_status(gateway, order_id, timeout=90)
    for sku, available in stock.items():
        restock = {"quantity": available}
        response = gateway.put(f"/api/admin/products/{sku}/stock", json=restock, headers=admin)
        response.raise_for_status()

    assert not failures, "\n\n".join(failures)
    assert answered, "schemathesis sent nothing"
    # Each JSON success was validated against a schema of its own (not an open object).
    typed = {label for label, schema in described.items() if schema is not None}
    assert set(checked) <= typed, set(checked) - typed
    assert {"POST /api/orders", "GET /api/products", "GET /api/admin/orders"} <= set(checked)


def success_bodies(raw: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """Each operation's JSON success schemas by label (`POST /api/orders`): None where the
    document describes the body as any object, or not at all. (The SSE streams have none.)"""
    out: dict[str, dict[str, Any] | None] = {}
    components = raw["components"]["schemas"]
    for path, methods in raw["paths"].items():
        for method, operation in methods.items():
            for code, response in operation["responses"].items():
                content = response.get("content", {})
                if not code.startswith("2") or (body := content.get("application/json")) is None:
                    continue
                schema = body["schema"].get("items", body["schema"])  # or a list of them
                ref = schema.get("$ref", "").removeprefix("#/components/schemas/")
                has_keys = ref in components and components[ref].get("properties")
                out[f"{method.upper()} {path}"] = schema if has_keys else None
    return out


def run(schema: Any) -> tuple[list[str], list[str], dict[int, int], dict[str, int]]:
    """The failures found (readably, with a curl command to reproduce each), the orders the
    run placed, how many answers it got of each status code, and how many JSON success
    bodies of each operation were validated against the document's schema."""
    failures: list[str] = []
    placed: list[str] = []
    answered: dict[int, int] = {}
    checked: dict[str, int] = {}
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
            for case_id, checks in recorder.checks.items():
                if (label := validated_success(recorder, case_id)) is not None:
                    checked[label] = checked.get(label, 0) + 1
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
    return failures, sorted(set(placed)), answered, checked


def validated_success(recorder: Any, case_id: str) -> str | None:
    """The operation, when the case's answer was a JSON success whose body the run validated
    against the document's schema."""
    interaction = recorder.interactions.get(case_id)
    answer = interaction.response if interaction is not None else None
    if answer is None or not 200 <= answer.status_code < 300:
        return None
    if not (answer.headers.get("content-type") or [""])[0].startswith("application/json"):
        return None
    conforms = any(
        check.name == "response_schema_conformance" and check.status == Status.SUCCESS
        for check in recorder.checks[case_id]
    )
    label: str = recorder.cases[case_id].value.operation.label
    return label if conforms else None
