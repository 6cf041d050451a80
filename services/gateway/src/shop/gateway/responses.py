"""What each operation can answer besides its success, for the OpenAPI document (the routes'
`responses=`). The bodies are those errors.py writes; the form and HTML routes answer their own
validation errors as HTML."""

from typing import Any

from pydantic import BaseModel

from shop.gateway.answers import Cancelled, Cancelling, Readiness

Responses = dict[int | str, dict[str, Any]]


class ErrorBody(BaseModel):
    """Every error the gateway answers in JSON."""

    error: str
    # Bad input: the field (dotted path, e.g. `items.0.quantity`, or a header's name) -> why.
    fields: dict[str, str] | None = None


_ERROR_JSON = {"application/json": {"schema": ErrorBody.model_json_schema()}}
_SECONDS = {"type": "string", "pattern": "^[0-9]+$"}


def _error(description: str, **headers: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": _ERROR_JSON}
    if headers:
        response["headers"] = {name.replace("_", "-"): spec for name, spec in headers.items()}
    return response


def _retry_after(description: str) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": _SECONDS}


MALFORMED_JSON: Responses = {400: _error("The body is not valid JSON.")}
BAD_FORM: Responses = {400: _error("The form body could not be parsed.")}
INVALID: Responses = {422: _error("Invalid input; `fields` names each field and why.")}
INVALID_ORDER: Responses = {
    422: _error(
        "Invalid order, or an Idempotency-Key used before for a different request; `fields` "
        "names each field (or the `Idempotency-Key` header) and why. Nothing was started."
    )
}
INVALID_FORM: Responses = {
    422: {
        "description": "Invalid form input: the page again, each error beside its field.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}
UNKNOWN_ORDER: Responses = {404: _error("No such order (or the id is malformed).")}
NOT_YOURS: Responses = {
    404: _error(
        "No such order, or the Order-Secret is missing or wrong: an order the caller may not "
        "change looks exactly like one that does not exist."
    )
}
UNKNOWN_PRODUCT: Responses = {404: _error("No such product.")}
TOO_LATE: Responses = {409: _error("Too late to cancel: the order is fulfilled or failed.")}
ADMIN_ONLY: Responses = {
    401: _error(
        "Missing or wrong admin token (`Authorization: Bearer <ADMIN_TOKEN>`, or HTTP Basic "
        "with the token as password).",
        WWW_Authenticate={
            "description": '`Basic realm="shop admin"`, so that a browser asks for it.',
            "required": True,
            "schema": {"type": "string"},
        },
    ),
    403: _error(
        "An action sent from another site, or with HTTP Basic but without the operator "
        "page's `X-CSRF-Token`: nothing was done.",
    ),
}
OVERLOADED: Responses = {
    429: _error(
        "Too many orders in progress on this gateway; nothing was started. Try again after "
        "Retry-After seconds.",
        Retry_After=_retry_after("Seconds to wait before placing the order again."),
    )
}
OVERLOADED_FORM: Responses = {
    429: {
        "description": "Too many orders in progress; the page again, asking to retry shortly.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}
UNAVAILABLE: Responses = {
    503: _error(
        "Restate cannot be reached right now; nothing was changed. Try again after Retry-After "
        "seconds.",
        Retry_After=_retry_after("Seconds to wait before trying again."),
    )
}
NOT_REFUNDABLE: Responses = {
    409: _error(
        "Nothing refunded: the order is not completed, or the amount is more than is left to "
        "refund (`error` says which, and how much is left)."
    )
}
CANCELLED: Responses = {200: {"description": "The order is cancelled already.", "model": Cancelled}}
CANCELLING: Responses = {
    202: {
        "description": "Cancelling: the order unwinds (hold voided, stock released); "
        "`status_url` shows when it is done.",
        "model": Cancelling,
    }
}
BAD_WEBHOOK: Responses = {
    400: _error(
        "Refused: the `Stripe-Signature` header is missing or does not verify with the "
        "endpoint's signing secret, its timestamp is more than 5 minutes old, or the body is "
        "not a Stripe event. Nothing was changed."
    )
}
# The webhook's body, which the route reads raw (the signature covers its exact bytes).
STRIPE_EVENT: dict[str, Any] = {
    "required": True,
    "description": "A Stripe event, as Stripe signs and sends it.",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "type": {"type": "string"},
                    "data": {"type": "object"},
                },
            }
        }
    },
}
NOT_READY: Responses = {
    503: {
        "description": "Not ready: Restate does not answer, or a service is not registered "
        "yet (`missing` names them).",
        "model": Readiness,
    }
}
EVENT_STREAM: Responses = {
    200: {
        "description": "Server-sent events: the snapshot first, then each step, until the end.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    204: {"description": "The client has seen the final event already (`Last-Event-ID`)."},
}


def merge(*parts: Responses) -> Responses:
    out: Responses = {}
    for part in parts:
        out.update(part)
    return out
