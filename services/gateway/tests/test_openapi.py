"""The OpenAPI document: every JSON success body described (the contract test validates the
answers against it), and the operators' credentials as security schemes."""

from typing import Any

import pytest
from pydantic import SecretStr

from shop.gateway.app import create_app
from shop.gateway.settings import GatewaySettings

ADMIN: list[dict[str, list[str]]] = [{"AdminToken": []}, {"OperatorPage": []}]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(
        GatewaySettings(shop_dev_mode=True, admin_token=SecretStr("t" * 32))
    ).openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def schema_of(document: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    name = reference["$ref"].removeprefix("#/components/schemas/")
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def test_the_admin_credentials_are_security_schemes(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["AdminToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["AdminToken"]["description"],
    }
    assert schemes["OperatorPage"]["type"] == "http"
    assert schemes["OperatorPage"]["scheme"] == "basic"


def test_every_admin_operation_takes_either_and_no_other_does(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        admin = path.startswith(("/api/admin/", "/admin"))
        assert operation.get("security") == (ADMIN if admin else None), (method, path)
        # The credentials are the schemes', not a header parameter of their own.
        headers = {
            p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"
        }
        assert "authorization" not in headers, (method, path)


def test_every_json_success_has_its_body_described(document: dict[str, Any]) -> None:
    described = 0
    for method, path, operation in operations(document):
        for code, response in operation["responses"].items():
            content = response.get("content", {})
            if not code.startswith("2") or (json_body := content.get("application/json")) is None:
                continue
            schema = json_body["schema"].get("items", json_body["schema"])  # or a list of them
            assert "$ref" in schema, (method, path, code, schema)
            assert schema_of(document, schema)["properties"], (method, path, code)
            described += 1
    assert described >= 17  # the API's, and the webhook's receipt


def test_the_event_streams_are_described_as_server_sent_events_only(
    document: dict[str, Any],
) -> None:
    for path in ("/api/orders/{order_id}/events", "/orders/{order_id}/stream"):
        ok = document["paths"][path]["get"]["responses"]["200"]
        assert set(ok["content"]) == {"text/event-stream"}, path


def test_a_placed_order_and_its_status_are_described(document: dict[str, Any]) -> None:
    placed = document["paths"]["/api/orders"]["post"]["responses"]["202"]
    schema = schema_of(document, placed["content"]["application/json"]["schema"])
    assert set(schema["properties"]) == {
        "order_id",
        "order_secret",
        "status_url",
        "events_url",
        "cancel_url",
    }
    assert schema["required"] == ["order_id", "status_url", "events_url", "cancel_url"]
    assert schema["properties"]["order_secret"] == {
        "type": "string",  # there only for the request that placed the order, never null
        "title": "Order Secret",
        "description": schema["properties"]["order_secret"]["description"],
    }

    status = document["paths"]["/api/orders/{order_id}"]["get"]["responses"]["200"]
    schema = schema_of(document, status["content"]["application/json"]["schema"])
    assert schema["required"] == [
        "order_id",
        "status",
        "step",
        "percent",
        "message",
        "cancellable",
        "trace_id",
    ]
    # Left out until there is one, never null; and never the seq nor the payment's id.
    assert set(schema["properties"]) == {*schema["required"], "result", "action_url", "reason"}
    for key in ("result", "action_url", "reason"):
        assert "null" not in str(schema["properties"][key]), key
    result = schema_of(document, schema["properties"]["result"])
    assert "payment_intent_id" not in result["properties"]
    assert set(result["required"]) == {"order_id", "status", "reason", "last_step"}


def test_a_cancel_s_answers_are_described(document: dict[str, Any]) -> None:
    for path in ("/api/orders/{order_id}/cancel", "/api/admin/orders/{order_id}/cancel"):
        responses = document["paths"][path]["post"]["responses"]
        cancelled = responses["200"]["content"]["application/json"]["schema"]
        cancelling = responses["202"]["content"]["application/json"]["schema"]
        assert schema_of(document, cancelled)["properties"]["status"]["const"] == "cancelled"
        assert schema_of(document, cancelling)["required"] == ["order_id", "status", "status_url"]
