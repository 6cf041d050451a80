"""The JSON API: /api/..."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from shop.gateway.answers import (
    Cancelled,
    Cancelling,
    OrderPlaced,
    OrderProgress,
    ProductOnSale,
    ReconciliationStarted,
    RefundStarted,
)
from shop.gateway.book import OrderListQuery, csv_rows
from shop.gateway.deps import (
    Admit,
    Hold,
    Hub,
    Ingress,
    Operator,
    Settings,
    require_admin,
    shed_when_overloaded,
    site_of,
)
from shop.gateway.events import HeldStream, event_name, event_stream
from shop.gateway.operations import ActionRequest
from shop.gateway.orders import (
    ORDER_ID_PATTERN,
    IdempotencyKey,
    OrderRequest,
    place,
)
from shop.gateway.reconciliations import (
    RECONCILIATION_ID_PATTERN,
    ReconciliationRequest,
    reconciliation_ask,
)
from shop.gateway.refunds import REFUND_ID_PATTERN, RefundRequest, refund_ask
from shop.gateway.responses import (
    ADMIN_ONLY,
    CANCELLED,
    CANCELLING,
    EVENT_STREAM,
    INVALID,
    INVALID_ORDER,
    MALFORMED_JSON,
    NOT_REFUNDABLE,
    NOT_YOURS,
    OVERLOADED,
    TOO_LATE,
    UNAVAILABLE,
    UNKNOWN_ORDER,
    UNKNOWN_PRODUCT,
    merge,
)
from shop.shared.catalog import CATALOG, PRODUCTS
from shop.shared.contracts.fulfilment import OrderStatus
from shop.shared.contracts.inventory import StockLevel, StockUpdate
from shop.shared.contracts.orders import (
    ActionRecord,
    OrderInvocations,
    OrderPage,
    OrderRecord,
    ReconciliationReport,
    RefundEntry,
)

router = APIRouter(prefix="/api")
OrderId = Annotated[str, Path(pattern=ORDER_ID_PATTERN)]
RefundId = Annotated[str, Path(pattern=REFUND_ID_PATTERN)]
ReconciliationId = Annotated[str, Path(pattern=RECONCILIATION_ID_PATTERN)]


# What no progress event shows (they are public to anyone with the order's id): the progress
# seq is the SSE event's id already, the payment's id is for operators only, and a pushed
# status's stepped_at is for the push lag metric. (The status's answer, OrderProgress, leaves
# out the same.)
NOT_PUBLIC: dict[str, Any] = {"seq": True, "stepped_at": True, "result": {"payment_intent_id"}}


@router.post(
    "/orders",
    status_code=202,
    responses=merge(MALFORMED_JSON, INVALID_ORDER, OVERLOADED, UNAVAILABLE),
    dependencies=[Depends(shed_when_overloaded)],
)
async def place_order(
    request: Request,
    order: OrderRequest,
    ingress: Ingress,
    admission: Admit,
    settings: Settings,
    idempotency_key: Annotated[IdempotencyKey | None, Header()] = None,
) -> OrderPlaced:
    """Starts the order. `order_secret` is what cancelling it takes (the `Order-Secret`
    header): keep it. The same Idempotency-Key with the same body answers with the same order
    again, without `order_secret`: only the request that placed the order is given it."""
    site = site_of(request, settings)
    placed = await place(ingress, admission, order, idempotency_key, site)
    return OrderPlaced.of(placed.order_id, placed.secret or None)


@router.get("/orders/{order_id}", responses=merge(UNKNOWN_ORDER, INVALID, UNAVAILABLE))
async def get_order(order_id: OrderId, ingress: Ingress) -> OrderProgress:
    """Where the order is: `result` (and `reason`, if it failed or was cancelled) once it has
    ended, `action_url` while the customer's bank waits for them. By id alone: nothing in it
    names the customer."""
    return OrderProgress.of(await ingress.order_status(order_id))


@router.get(
    "/orders/{order_id}/events",
    response_model=None,
    response_class=HeldStream,
    responses=merge(EVENT_STREAM, UNKNOWN_ORDER, INVALID, UNAVAILABLE),
)
async def order_events(
    order_id: OrderId,
    ingress: Ingress,
    hub: Hub,
    settings: Settings,
    hold: Hold,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    def render(status: OrderStatus) -> dict[str, str]:
        return {"event": event_name(status), "data": status.model_dump_json(exclude=NOT_PUBLIC)}

    return await event_stream(
        ingress, hub, order_id, last_event_id, render, settings.sse_ping_seconds, hold
    )


@router.post(
    "/orders/{order_id}/cancel",
    response_model=None,
    responses=merge(CANCELLED, CANCELLING, NOT_YOURS, TOO_LATE, INVALID, UNAVAILABLE),
)
async def cancel_order(
    order_id: OrderId,
    ingress: Ingress,
    response: Response,
    order_secret: Annotated[str | None, Header()] = None,
) -> Cancelled | Cancelling:
    """202 while the cancellation unwinds the order; 409 once it is fulfilled or failed;
    404 without the order's secret (`Order-Secret` header), as for an unknown order."""
    return cancel_answer(order_id, await ingress.cancel_order(order_id, order_secret), response)


@router.post(
    "/admin/orders/{order_id}/cancel",
    response_model=None,
    dependencies=[Depends(require_admin)],
    responses=merge(
        CANCELLED, CANCELLING, ADMIN_ONLY, UNKNOWN_ORDER, TOO_LATE, INVALID, UNAVAILABLE
    ),
)
async def cancel_any_order(
    order_id: OrderId, ingress: Ingress, response: Response
) -> Cancelled | Cancelling:
    """An operator cancels any unfinished order, without its secret."""
    return cancel_answer(order_id, await ingress.cancel_as_operator(order_id), response)


def cancel_answer(order_id: str, outcome: str, response: Response) -> Cancelled | Cancelling:
    """200 cancelled already, 202 cancelling; otherwise too late (409)."""
    if outcome == "cancelled":
        return Cancelled(order_id=order_id)
    if outcome == "cancelling":
        response.status_code = 202
        return Cancelling(order_id=order_id, status_url=f"/api/orders/{order_id}")
    raise HTTPException(409, f"too late to cancel: the order is {outcome}")


@router.get("/products", responses=UNAVAILABLE)
async def list_products(ingress: Ingress) -> list[ProductOnSale]:
    stock = await ingress.all_stock()
    return [ProductOnSale.of(p, stock[p.product_id]) for p in PRODUCTS]


@router.put(
    "/admin/products/{sku}/stock",
    dependencies=[Depends(require_admin)],
    responses=merge(MALFORMED_JSON, ADMIN_ONLY, UNKNOWN_PRODUCT, INVALID, UNAVAILABLE),
)
async def set_stock(sku: str, update: StockUpdate, ingress: Ingress) -> StockLevel:
    if sku not in CATALOG:
        raise HTTPException(404, f"unknown product {sku!r}")
    return await ingress.set_stock(sku, update)


@router.get(
    "/admin/orders",
    dependencies=[Depends(require_admin)],
    responses=merge(ADMIN_ONLY, INVALID, UNAVAILABLE),
)
async def list_orders(query: Annotated[OrderListQuery, Query()], ingress: Ingress) -> OrderPage:
    """The order book, newest first: `limit` at a time, the next page from `next_cursor`."""
    return await ingress.find_orders(query.filter(), query.limit, query.cursor)


@router.get(
    "/admin/orders.csv",
    response_class=StreamingResponse,
    dependencies=[Depends(require_admin)],
    responses=merge(
        {200: {"description": "Every order the filters select.", "content": {"text/csv": {}}}},
        ADMIN_ONLY,
        INVALID,
        UNAVAILABLE,
    ),
)
async def export_orders(
    query: Annotated[OrderListQuery, Query()], ingress: Ingress
) -> StreamingResponse:
    """The same filters as the list (without `limit`: all of them), streamed as CSV."""
    return StreamingResponse(
        await csv_rows(ingress, query),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="orders.csv"'},
    )


@router.get(
    "/admin/orders/{order_id}",
    dependencies=[Depends(require_admin)],
    responses=merge(ADMIN_ONLY, UNKNOWN_ORDER, INVALID, UNAVAILABLE),
)
async def order_record(order_id: OrderId, ingress: Ingress) -> OrderRecord:
    """The order's full record in the book: lines, customer, amounts, its history."""
    return await ingress.order_record(order_id)


@router.post(
    "/admin/orders/{order_id}/refunds",
    status_code=202,
    dependencies=[Depends(require_admin)],
    responses=merge(
        MALFORMED_JSON, ADMIN_ONLY, UNKNOWN_ORDER, NOT_REFUNDABLE, INVALID, UNAVAILABLE
    ),
)
async def refund_order(
    order_id: OrderId,
    refund: RefundRequest,
    ingress: Ingress,
    idempotency_key: Annotated[IdempotencyKey | None, Header()] = None,
) -> RefundStarted:
    """Gives money back for a completed order (all that is left without `amount_cents`), and
    with `restock` its items back on the shelf; the customer is mailed. The refund runs on its
    own: `status_url` says how it ends. The same Idempotency-Key with the same body is the
    same refund; with another body, 422."""
    refund_id = await ingress.refund(order_id, refund_ask(refund, idempotency_key))
    return RefundStarted(
        refund_id=refund_id,
        order_id=order_id,
        status_url=f"/api/admin/orders/{order_id}/refunds/{refund_id}",
    )


@router.get(
    "/admin/orders/{order_id}/refunds/{refund_id}",
    dependencies=[Depends(require_admin)],
    responses=merge(ADMIN_ONLY, UNKNOWN_ORDER, INVALID, UNAVAILABLE),
)
async def refund_status(order_id: OrderId, refund_id: RefundId, ingress: Ingress) -> RefundEntry:
    """A refund and where it stands: `pending`, `succeeded`, or `failed` with the reason."""
    return await ingress.refund_record(order_id, refund_id)


@router.post(
    "/admin/reconciliations",
    status_code=202,
    dependencies=[Depends(require_admin)],
    responses=merge(MALFORMED_JSON, ADMIN_ONLY, INVALID, UNAVAILABLE),
)
async def reconcile(window: ReconciliationRequest, ingress: Ingress) -> ReconciliationStarted:
    """Compares Stripe with the book over [since, until): reports, never fixes. The run goes
    on by itself; `status_url` has its report."""
    started = await ingress.reconcile(reconciliation_ask(window))
    rid = started.reconciliation_id
    return ReconciliationStarted(
        reconciliation_id=rid, status_url=f"/api/admin/reconciliations/{rid}"
    )


@router.get(
    "/admin/reconciliations/{reconciliation_id}",
    dependencies=[Depends(require_admin)],
    responses=merge(ADMIN_ONLY, {404: UNKNOWN_ORDER[404]}, INVALID, UNAVAILABLE),
)
async def reconciliation_report(
    reconciliation_id: ReconciliationId, ingress: Ingress
) -> ReconciliationReport:
    """`running` until it ends; then what it checked and every discrepancy it found."""
    report = await ingress.reconciliation(reconciliation_id)
    if report is None:
        raise HTTPException(404, f"no reconciliation {reconciliation_id}")
    return report


@router.get(
    "/admin/orders/{order_id}/invocations",
    dependencies=[Depends(require_admin)],
    responses=merge(ADMIN_ONLY, UNKNOWN_ORDER, INVALID, UNAVAILABLE),
)
async def order_invocations(order_id: OrderId, ingress: Ingress) -> OrderInvocations:
    """The order's run and its calls that have not ended, as Restate has them: a `paused` or
    `backing-off` one says what failed last (`last_failure`)."""
    await ingress.order_record(order_id)  # OrderNotFound: 404
    return OrderInvocations(invocations=await ingress.invocations(order_id))


@router.post(
    "/admin/orders/{order_id}/actions",
    dependencies=[Depends(require_admin)],
    responses=merge(MALFORMED_JSON, ADMIN_ONLY, UNKNOWN_ORDER, INVALID, UNAVAILABLE),
)
async def act_on_order(
    order_id: OrderId, request: ActionRequest, ingress: Ingress, actor: Operator
) -> ActionRecord:
    """An operator's action on one of the order's invocations, recorded in the book with the
    order (`outcome`: done, or why not)."""
    await ingress.order_record(order_id)  # OrderNotFound: 404
    return await ingress.operate(order_id, request.invocation_id, request.action, actor)
