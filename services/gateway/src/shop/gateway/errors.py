"""One place that turns failures into HTTP answers: 4xx naming the field, 503 for Restate."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from shop.gateway.admission import Overloaded
from shop.gateway.client_limits import TooMany
from shop.gateway.orders import IdempotencyConflict
from shop.gateway.restate_ingress import OrderNotFound, RefundRefused, RestateUnavailable
from shop.shared.telemetry import counted_from_zero, orders_rejected

log = logging.getLogger(__name__)
counted_from_zero(orders_rejected, "reason", ["overloaded", "client_limit"])


def dotted(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def field_errors(error: ValidationError | RequestValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in error.errors():
        message = str(e["msg"]).removeprefix("Value error, ")
        out.setdefault(dotted(tuple(e["loc"])), message)
    return out


def count_rejected(e: Overloaded) -> None:
    """A 429, for the metrics: this client's share, or the process's bound."""
    reason = "client_limit" if isinstance(e, TooMany) else "overloaded"
    orders_rejected.add(1, {"reason": reason})


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, e: RequestValidationError) -> JSONResponse:
        if any(err["type"] == "json_invalid" for err in e.errors()):
            return JSONResponse(
                {"error": "malformed JSON body", "fields": {"body": "not valid JSON"}},
                status_code=400,
            )
        if any(err["loc"][:1] == ("path",) for err in e.errors()):
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(
            {"error": "invalid request", "fields": field_errors(e)}, status_code=422
        )

    @app.exception_handler(OrderNotFound)
    async def order_not_found(_: Request, e: OrderNotFound) -> JSONResponse:
        return JSONResponse({"error": f"no order {e}"}, status_code=404)

    @app.exception_handler(IdempotencyConflict)
    async def key_reused(_: Request, e: IdempotencyConflict) -> JSONResponse:
        # Says nothing of the order the key was first used for: not its id, not its status.
        message = "already used for a different request; use a new key for a new one"
        return JSONResponse(
            {"error": "Idempotency-Key reused", "fields": {"Idempotency-Key": message}},
            status_code=422,
        )

    @app.exception_handler(RefundRefused)
    async def refund_refused(_: Request, e: RefundRefused) -> JSONResponse:
        if e.outcome == "conflict":
            return await key_reused(_, IdempotencyConflict())
        status = 404 if e.outcome == "unknown_order" else 409
        return JSONResponse({"error": e.message}, status_code=status)

    @app.exception_handler(Overloaded)
    async def overloaded(_: Request, e: Overloaded) -> JSONResponse:
        count_rejected(e)
        if isinstance(e, TooMany):  # this client's share, not the process's bound
            headers = {"Retry-After": str(e.retry_after)}
            return JSONResponse({"error": e.message}, status_code=429, headers=headers)
        return JSONResponse(
            {"error": "too many orders in progress; try again shortly"},
            status_code=429,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(RestateUnavailable)
    async def restate_unavailable(_: Request, e: RestateUnavailable) -> JSONResponse:
        log.error("%s", e)
        return JSONResponse(
            {"error": "orders are unavailable right now, try again shortly"},
            status_code=503,
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, e: HTTPException) -> JSONResponse:
        return JSONResponse({"error": e.detail}, status_code=e.status_code, headers=e.headers)
