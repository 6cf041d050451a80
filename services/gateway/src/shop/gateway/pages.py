"""The storefront: server-rendered HTML, htmx for the form and the live progress."""

import asyncio
import logging
import secrets
from decimal import Decimal, InvalidOperation
from pathlib import Path as FsPath
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Cookie, Depends, Header, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from shop.gateway.admission import Overloaded
from shop.gateway.book import OrderListQuery
from shop.gateway.client_limits import TooMany
from shop.gateway.deps import (
    Admit,
    Hold,
    Hub,
    Ingress,
    Operator,
    Settings,
    csrf_token,
    require_admin,
    site_of,
)
from shop.gateway.errors import count_rejected, field_errors
from shop.gateway.events import HeldStream, event_stream
from shop.gateway.operations import ActionRequest
from shop.gateway.orders import (
    ORDER_ID_PATTERN,
    IdempotencyConflict,
    OrderItem,
    OrderRequest,
    order_lines,
    place,
)
from shop.gateway.reconciliations import ReconciliationRequest, reconciliation_ask
from shop.gateway.refunds import RefundRequest, refund_ask
from shop.gateway.responses import (
    ADMIN_ONLY,
    BAD_FORM,
    EVENT_STREAM,
    INVALID,
    INVALID_FORM,
    NOT_YOURS,
    OVERLOADED_FORM,
    UNAVAILABLE,
    UNKNOWN_ORDER,
    UNKNOWN_PRODUCT,
    merge,
)
from shop.gateway.restate_ingress import RefundRefused, RestateUnavailable
from shop.gateway.timeline import timeline
from shop.shared.catalog import CATALOG, PRODUCTS
from shop.shared.contracts.common import money
from shop.shared.contracts.fulfilment import OrderStatus
from shop.shared.contracts.inventory import StockUpdate
from shop.shared.contracts.orders import BOOK_STATES, ActionRecord, OrderRecord, PublicRefund

router = APIRouter()
log = logging.getLogger(__name__)
templates = Jinja2Templates(directory=FsPath(__file__).parent / "templates")
templates.env.filters["money"] = money
OrderId = Annotated[str, Path(pattern=ORDER_ID_PATTERN)]
# The order's secret, kept by the customer's browser: a cookie sent only to that order's pages
# (Path), never readable by scripts (HttpOnly) nor sent by other sites' forms (SameSite).
SECRET_COOKIE = "order_secret"
OrderSecret = Annotated[str | None, Cookie(alias=SECRET_COOKIE)]

REFUNDS_WAIT_SECONDS = 2
SECRET_COOKIE_MAX_AGE = 7 * 86400  # as long as Restate keeps the order (ORDER_RETENTION)

CANCEL_MESSAGES = {
    "cancelling": "Cancelling: the hold on the card is released, stock goes back.",
    "cancelled": "This order is cancelled.",
}

PAYMENT_METHODS = {
    "pm_card_visa": "Visa test card (succeeds)",
    "pm_card_chargeDeclined": "Card that will be declined",
    "pm_card_threeDSecure2Required": "Card that needs authentication",
}


async def render_store(
    request: Request, ingress: Ingress, form: dict[str, Any], errors: dict[str, str], status: int
) -> HTMLResponse:
    stock = await ingress.all_stock()
    return templates.TemplateResponse(
        request,
        "index.html",
        {
            "products": PRODUCTS,
            "stock": stock,
            "form": form,
            "errors": errors,
            "payment_methods": PAYMENT_METHODS,
            "form_key": secrets.token_urlsafe(16),  # one per rendered form: a resubmit is one order
        },
        status_code=status,
    )


async def form_fields(request: Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.form()).items()}


def cart_items(fields: dict[str, str]) -> list[dict[str, str]]:
    """The form's quantity fields (`qty.<sku>`) as order items, leaving out zeros."""
    items = [
        {"product_id": p.product_id, "quantity": fields.get(f"qty.{p.product_id}", "0").strip()}
        for p in PRODUCTS
    ]
    return [i for i in items if i["quantity"] not in {"", "0"}]


@router.post("/cart", response_class=HTMLResponse, responses=BAD_FORM)
async def cart_summary(request: Request) -> HTMLResponse:
    """The cart's lines and total as the customer edits quantities (prices from the catalog)."""
    items = []
    for item in cart_items(await form_fields(request)):
        try:
            items.append(OrderItem.model_validate(item))
        except ValidationError:
            continue  # the form shows that field's error when it is sent
    lines = order_lines(items)
    context = {
        "lines": lines,
        "total": sum(line.total_cents for line in lines),
        "currency": PRODUCTS[0].currency,
    }
    return templates.TemplateResponse(request, "_cart.html", context)


@router.get("/", response_class=HTMLResponse, responses=UNAVAILABLE)
async def store(request: Request, ingress: Ingress) -> HTMLResponse:
    return await render_store(request, ingress, {}, {}, 200)


@router.post(
    "/orders",
    response_model=None,
    # Documentation only: the handler always returns a Response of its own.
    status_code=303,
    response_class=RedirectResponse,
    responses=merge(
        {
            303: {"description": "Placed: on to the order's page (`Location`)."},
            204: {"description": "Placed (htmx): on to the order's page (`HX-Redirect`)."},
        },
        BAD_FORM,
        INVALID_FORM,
        OVERLOADED_FORM,
        UNAVAILABLE,
    ),
)
async def place_order_form(
    request: Request,
    ingress: Ingress,
    admission: Admit,
    settings: Settings,
    hx_request: Annotated[str | None, Header()] = None,
) -> Response:
    fields = await form_fields(request)
    items = cart_items(fields)
    try:
        order = OrderRequest.model_validate(
            {
                "customer_email": fields.get("customer_email", ""),
                "payment_method": fields.get("payment_method", "pm_card_visa"),
                "items": items,
            }
        )
    except ValidationError as e:
        return await render_store(request, ingress, fields, form_errors(e, items), 422)
    try:
        key = fields.get("idempotency_key") or None
        placed = await place(ingress, admission, order, key, site_of(request, settings))
    except IdempotencyConflict:  # the form was tampered with, or sent again changed
        errors = {"form": "This form was already used for another order; please try again."}
        return await render_store(request, ingress, {**fields, "idempotency_key": ""}, errors, 422)
    except Overloaded as e:
        count_rejected(e)
        wait = e.retry_after if isinstance(e, TooMany) else 1
        message = (
            "So many orders from your address: please place yours again in a minute."
            if isinstance(e, TooMany)
            else "So many orders right now: please place yours again in a moment."
        )
        busy = await render_store(request, ingress, fields, {"form": message}, 429)
        busy.headers["Retry-After"] = str(wait)  # as the API's 429 says
        return busy
    page = f"/orders/{placed.order_id}"
    response: Response
    if hx_request:  # htmx: a full page load of the order page
        response = Response(status_code=204, headers={"HX-Redirect": page})
    else:
        response = RedirectResponse(page, status_code=303)
    if placed.secret:  # a resubmitted form leaves the cookie its first answer set
        response.set_cookie(
            SECRET_COOKIE,
            placed.secret,
            max_age=SECRET_COOKIE_MAX_AGE,
            path=page,
            secure=site_of(request, settings).startswith("https://"),
            httponly=True,
            samesite="strict",
        )
    return response


def form_errors(error: ValidationError, items: list[dict[str, str]]) -> dict[str, str]:
    """Validation errors keyed by the form field they belong to."""
    errors: dict[str, str] = {}
    for field, message in field_errors(error).items():
        parts = field.split(".")
        if parts[0] == "items" and len(parts) > 1 and parts[1].isdigit():
            errors[f"qty.{items[int(parts[1])]['product_id']}"] = message
        else:
            errors[parts[0]] = message
    return errors


@router.get(
    "/orders/{order_id}",
    response_class=HTMLResponse,
    responses=merge(UNKNOWN_ORDER, INVALID, UNAVAILABLE),
)
async def order_page(
    request: Request,
    order_id: OrderId,
    ingress: Ingress,
    settings: Settings,
    secret: OrderSecret = None,
) -> HTMLResponse:
    """Anyone with the link sees the progress (no personal data); the browser that placed
    the order (it holds the secret) also gets the cancel button."""
    status = await ingress.order_status(order_id)
    context = {
        "status": status,
        "refunds": await refunds_of(ingress, status),
        "steps": timeline(status),
        "owner": secret is not None,
        "jaeger": settings.jaeger_ui_url,
    }
    return templates.TemplateResponse(request, "order.html", context)


async def refunds_of(ingress: Ingress, status: OrderStatus) -> list[PublicRefund]:
    """What the book has of a completed order's refunds (no other order can have any). Shown
    when the book answers at once: a book that cannot (PostgreSQL down) costs the page its
    refunds, never the page."""
    if status.status != "completed":
        return []
    try:
        async with asyncio.timeout(REFUNDS_WAIT_SECONDS):
            return await ingress.public_refunds(status.order_id)
    except (RestateUnavailable, TimeoutError) as e:
        log.warning("refunds of %s not shown: %r", status.order_id, e)
        return []


@router.post(
    "/orders/{order_id}/cancel",
    response_class=HTMLResponse,
    responses=merge(NOT_YOURS, INVALID, UNAVAILABLE),
)
async def cancel_from_page(
    order_id: OrderId, ingress: Ingress, secret: OrderSecret = None
) -> HTMLResponse:
    """The order page's cancel button; the live progress shows the unwinding."""
    outcome = await ingress.cancel_order(order_id, secret)
    return HTMLResponse(
        CANCEL_MESSAGES.get(outcome, f"Too late to cancel: the order is {outcome}.")
    )


def progress_fragment(status: OrderStatus, owner: bool) -> str:
    return templates.get_template("_progress.html").render(
        status=status, steps=timeline(status), owner=owner
    )


@router.get(
    "/orders/{order_id}/stream",
    response_model=None,
    response_class=HeldStream,
    responses=merge(EVENT_STREAM, UNKNOWN_ORDER, INVALID, UNAVAILABLE),
)
async def order_stream(
    order_id: OrderId,
    ingress: Ingress,
    hub: Hub,
    settings: Settings,
    hold: Hold,
    secret: OrderSecret = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """The order page's live region: each event is the progress fragment, rendered; the
    final one is named `done`, which the page's sse-close listens for."""

    def render(status: OrderStatus) -> dict[str, str]:
        return {
            "event": "done" if status.is_final else "progress",
            "data": progress_fragment(status, owner=secret is not None),
        }

    return await event_stream(
        ingress, hub, order_id, last_event_id, render, settings.sse_ping_seconds, hold
    )


@router.post(
    "/admin/orders/{order_id}/cancel",
    response_class=HTMLResponse,
    dependencies=[Depends(require_admin)],
    responses=merge(ADMIN_ONLY, UNKNOWN_ORDER, INVALID, UNAVAILABLE),
)
async def cancel_from_operator_page(order_id: OrderId, ingress: Ingress) -> HTMLResponse:
    """An operator cancels any unfinished order, without its secret."""
    outcome = await ingress.cancel_as_operator(order_id)
    return HTMLResponse(CANCEL_MESSAGES.get(outcome, f"too late: {outcome}"))


@router.get(
    "/admin",
    response_class=HTMLResponse,
    dependencies=[Depends(require_admin)],
    responses=merge(ADMIN_ONLY, INVALID_FORM, UNAVAILABLE),
)
async def operator_page(request: Request, ingress: Ingress, settings: Settings) -> HTMLResponse:
    """Stock, and the order book with the API's filters and pages (a filter's empty field is
    no filter)."""
    fields = {k: v for k, v in request.query_params.items() if v.strip()}
    try:
        query, error = OrderListQuery.model_validate(fields), None
    except ValidationError as e:
        query = OrderListQuery()
        error = "; ".join(f"{field}: {why}" for field, why in field_errors(e).items())
    page, stock, reports = await asyncio.gather(
        ingress.find_orders(query.filter(), query.limit, query.cursor),
        ingress.all_stock(),
        ingress.recent_reconciliations(),
    )
    filters = query.model_dump(mode="json", exclude_none=True, exclude={"limit", "cursor"})
    context = {
        "page": page,
        "query": query,
        "filter_error": error,
        "filtered": bool(filters),
        "statuses": BOOK_STATES,
        "products": PRODUCTS,
        "next_query": urlencode({**filters, "cursor": page.next_cursor or ""}),
        "export_query": urlencode(filters),
        "stock": stock,
        "reports": reports,
        "form": {},
        "error": None,
        "csrf_token": csrf_token(settings.admin_token.get_secret_value()),
    }
    status = 422 if error else 200
    return templates.TemplateResponse(request, "admin.html", context, status_code=status)


@router.get(
    "/admin/orders/{order_id}",
    response_class=HTMLResponse,
    dependencies=[Depends(require_admin)],
    responses=merge(ADMIN_ONLY, UNKNOWN_ORDER, INVALID, UNAVAILABLE),
)
async def operator_order_page(
    request: Request, order_id: OrderId, ingress: Ingress, settings: Settings
) -> HTMLResponse:
    """One order from the book: customer, lines, history, its journal and its trace."""
    record = await ingress.order_record(order_id)
    context = {
        **refunds_context(record),
        **await invocations_context(ingress, record),
        "restate_ui": settings.restate_ui_url,
        "jaeger": settings.jaeger_ui_url,
        "csrf_token": csrf_token(settings.admin_token.get_secret_value()),
    }
    return templates.TemplateResponse(request, "admin_order.html", context)


async def invocations_context(
    ingress: Ingress, record: OrderRecord, acted: ActionRecord | None = None
) -> dict[str, Any]:
    """The order's unfinished invocations (or why they cannot be shown: the page stays)."""
    try:
        found, error = await ingress.invocations(record.order_id), None
    except RestateUnavailable as e:
        log.warning("invocations of %s not shown: %s", record.order_id, e)
        found, error = [], "Restate's view of this order cannot be read right now."
    return {"record": record, "invocations": found, "invocations_error": error, "acted": acted}


@router.post(
    "/admin/orders/{order_id}/act",
    response_class=HTMLResponse,
    dependencies=[Depends(require_admin)],
    responses=merge(BAD_FORM, ADMIN_ONLY, UNKNOWN_ORDER, INVALID, UNAVAILABLE),
)
async def act_from_operator_page(
    request: Request, order_id: OrderId, ingress: Ingress, settings: Settings, actor: Operator
) -> HTMLResponse:
    """The order page's Resume, Retry now and Kill buttons (the API's action)."""
    fields = await form_fields(request)
    try:
        action = ActionRequest.model_validate(fields)
    except ValidationError as e:
        raise HTTPException(422, "; ".join(field_errors(e).values())) from e
    acted = await ingress.operate(order_id, action.invocation_id, action.action, actor)
    record = await ingress.order_record(order_id)
    context = {
        **await invocations_context(ingress, record, acted),
        "restate_ui": settings.restate_ui_url,
    }
    return templates.TemplateResponse(request, "_invocations.html", context)


def refunds_context(
    record: OrderRecord,
    form: dict[str, str] | None = None,
    error: str | None = None,
    opened: str | None = None,
) -> dict[str, Any]:
    """The order's refunds and the refund form (with a new Idempotency-Key unless the form
    comes back with an error: sent again, it is then still the same refund)."""
    form = form or {}
    return {
        "record": record,
        "form": form,
        "error": error,
        "opened": opened,
        "form_key": form.get("idempotency_key") or secrets.token_urlsafe(16),
    }


def refunds_fragment(
    request: Request,
    record: OrderRecord,
    form: dict[str, str] | None = None,
    error: str | None = None,
    opened: str | None = None,
) -> HTMLResponse:
    context = refunds_context(record, form, error, opened)
    return templates.TemplateResponse(
        request, "_refunds.html", context, status_code=422 if error else 200
    )


@router.get(
    "/admin/orders/{order_id}/refunds",
    response_class=HTMLResponse,
    dependencies=[Depends(require_admin)],
    responses=merge(ADMIN_ONLY, UNKNOWN_ORDER, INVALID, UNAVAILABLE),
)
async def operator_refunds(request: Request, order_id: OrderId, ingress: Ingress) -> HTMLResponse:
    """The order page's refunds, refreshed while one is pending."""
    return refunds_fragment(request, await ingress.order_record(order_id))


def cents(amount: str) -> int | None:
    """`12.50` (the order's currency) as cents; blank is None (all that is left)."""
    if not amount.strip():
        return None
    try:
        value = Decimal(amount.strip().replace(",", "."))
    except InvalidOperation:
        raise ValueError("an amount such as 12.50") from None
    if not value.is_finite() or value != value.quantize(Decimal("0.01")):
        raise ValueError("an amount such as 12.50, to the cent")
    return int(value * 100)


@router.post(
    "/admin/orders/{order_id}/refund",
    response_class=HTMLResponse,
    dependencies=[Depends(require_admin)],
    responses=merge(BAD_FORM, ADMIN_ONLY, UNKNOWN_ORDER, INVALID_FORM, UNAVAILABLE),
)
async def refund_from_operator_page(
    request: Request, order_id: OrderId, ingress: Ingress
) -> HTMLResponse:
    """The refund form: the API's refund, its answer (or why not) shown beside the form."""
    fields = await form_fields(request)
    try:
        refund = RefundRequest.model_validate(
            {
                "amount_cents": cents(fields.get("amount", "")),
                "reason": fields.get("reason", ""),
                "restock": fields.get("restock") == "on",
            }
        )
        refund_id = await ingress.refund(
            order_id, refund_ask(refund, fields.get("idempotency_key"))
        )
    except ValueError as e:  # a ValidationError too
        error = "; ".join(field_errors(e).values()) if isinstance(e, ValidationError) else str(e)
        return refunds_fragment(request, await ingress.order_record(order_id), fields, error)
    except RefundRefused as e:
        return refunds_fragment(request, await ingress.order_record(order_id), fields, e.message)
    return refunds_fragment(request, await ingress.order_record(order_id), opened=refund_id)


async def reconciliations_fragment(
    request: Request, ingress: Ingress, form: dict[str, str] | None = None, error: str = ""
) -> HTMLResponse:
    context = {
        "reports": await ingress.recent_reconciliations(),
        "form": form or {},
        "error": error or None,
    }
    return templates.TemplateResponse(
        request, "_reconciliations.html", context, status_code=422 if error else 200
    )


@router.get(
    "/admin/reconciliations",
    response_class=HTMLResponse,
    dependencies=[Depends(require_admin)],
    responses=merge(ADMIN_ONLY, UNAVAILABLE),
)
async def operator_reconciliations(request: Request, ingress: Ingress) -> HTMLResponse:
    """The operator page's reconciliations, refreshed while one runs."""
    return await reconciliations_fragment(request, ingress)


@router.post(
    "/admin/reconcile",
    response_class=HTMLResponse,
    dependencies=[Depends(require_admin)],
    responses=merge(BAD_FORM, ADMIN_ONLY, INVALID_FORM, UNAVAILABLE),
)
async def reconcile_from_operator_page(request: Request, ingress: Ingress) -> HTMLResponse:
    """The reconcile form: the API's reconciliation of [since, until)."""
    fields = await form_fields(request)
    try:
        window = ReconciliationRequest.model_validate(
            {"since": fields.get("since", ""), "until": fields.get("until", "")}
        )
    except ValidationError as e:
        error = "; ".join(f"{field}: {why}" for field, why in field_errors(e).items())
        return await reconciliations_fragment(request, ingress, fields, error)
    await ingress.reconcile(reconciliation_ask(window))
    return await reconciliations_fragment(request, ingress)


@router.post(
    "/admin/stock/{sku}",
    response_class=HTMLResponse,
    dependencies=[Depends(require_admin)],
    responses=merge(BAD_FORM, ADMIN_ONLY, UNKNOWN_PRODUCT, INVALID_FORM, UNAVAILABLE),
)
async def set_stock_from_page(request: Request, sku: str, ingress: Ingress) -> HTMLResponse:
    if sku not in CATALOG:
        raise HTTPException(404, f"unknown product {sku!r}")
    raw = (await form_fields(request)).get("quantity", "")
    try:
        level = await ingress.set_stock(sku, StockUpdate.model_validate({"quantity": raw}))
        error = None
    except ValidationError:
        level, error = await ingress.stock(sku), "a whole number, 0 or more"
    context = {"level": level, "error": error}
    return templates.TemplateResponse(
        request, "_stock_row.html", context, status_code=422 if error else 200
    )
