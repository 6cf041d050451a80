"""The gateway's calls to Restate, all through its ingress (the gateway has no admin rights):
every URL and error mapping lives here."""

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, TypedDict

import httpx
from pydantic import BaseModel

from shop.shared import names
from shop.shared.catalog import PRODUCTS
from shop.shared.contracts.common import OrderRef
from shop.shared.contracts.fulfilment import (
    CancelReply,
    CancelRequest,
    KeyedOrder,
    KeyedOrderReply,
    Order,
    OrderStatus,
    PaymentEvent,
)
from shop.shared.contracts.inventory import Restock, StockLevel, StockUpdate
from shop.shared.contracts.orders import (
    ActionRecord,
    BookReconciliation,
    BookRecord,
    BookRefund,
    BookStatus,
    InvocationInfo,
    OperatorAction,
    OperatorActionKind,
    OrderFilter,
    OrderInvocations,
    OrderLookup,
    OrderPage,
    OrderQuery,
    OrderRecord,
    PublicRefund,
    PublicRefunds,
    RecentReconciliations,
    ReconciliationAsk,
    ReconciliationList,
    ReconciliationLookup,
    ReconciliationReport,
    RefundAsk,
    RefundEntry,
    RefundLookup,
    RefundOpened,
)
from shop.shared.telemetry import current_ids, orders_started

# Operators' actions, one line each (who acted is whoever holds ADMIN_TOKEN).
audit = logging.getLogger("shop.gateway.audit")

# Every service the shop needs registered, each with a path to one of its handlers (objects
# and workflows take a key). Readiness asks the ingress for each with a body it refuses
# (400) before anything runs, and that it answers 404 only for a service it does not have:
# no admin rights needed, nothing invoked.
PROBES = {
    names.FULFILMENT: "probe/get_status",
    names.ORDER_KEYS: "probe/start",
    names.PAYMENTS: "authorize",
    names.INVENTORY: "probe/get",
    names.EMAIL: "send",
    names.MAIL_QUOTA: "probe/take",
    names.ORDERS: "probe/record",
    names.ORDER_BOOK: "status",
    names.REFUND: "probe/run",
    names.RECONCILIATION: "probe/run",
    names.RECONCILIATIONS: "request",
    names.RECONCILIATION_SCHEDULE: "probe/start",
}
REQUIRED_SERVICES = frozenset(PROBES)
PROBE = {"content-type": "application/x-shop-readiness-probe"}


class Failover(httpx.AsyncBaseTransport):
    """Sends each request to one of several Restate nodes, any of which answers for the whole
    cluster: to the node that answered last, or, when no connection can be made to it, to the
    next one. Only a request that never left (no connection) is sent again, so nothing is
    ever delivered twice; a request cut off mid-way fails as before."""

    def __init__(self, urls: Sequence[str], transport: httpx.AsyncBaseTransport) -> None:
        self.urls = [httpx.URL(url) for url in urls]
        self.transport, self.current = transport, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(len(self.urls)):
            index = (self.current + attempt) % len(self.urls)
            node = self.urls[index]
            request.url = request.url.copy_with(scheme=node.scheme, host=node.host, port=node.port)
            request.headers["Host"] = request.url.netloc.decode("ascii")
            try:
                response = await self.transport.handle_async_request(request)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                if attempt == len(self.urls) - 1:
                    raise
                continue
            self.current = index
            return response
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self.transport.aclose()


class Pool(TypedDict, total=False):
    limits: httpx.Limits


def restate_client(
    nodes: list[str], timeout: httpx.Timeout, limits: httpx.Limits | None = None
) -> httpx.AsyncClient:
    """A client for Restate's ingress or admin API: one URL, or several (the nodes of a
    cluster, same path on each), failing over between them."""
    pool: Pool = {"limits": limits} if limits else {}  # else httpx's default pool
    if len(nodes) == 1:
        return httpx.AsyncClient(base_url=nodes[0], timeout=timeout, **pool)
    failover = Failover(nodes, httpx.AsyncHTTPTransport(**pool))
    return httpx.AsyncClient(base_url=nodes[0], timeout=timeout, transport=failover)


class RestateUnavailable(Exception):
    """Restate could not be reached, or gave an answer the gateway cannot use."""


class OrderNotFound(Exception):
    pass


class RefundRefused(Exception):
    """The book would not open the refund: `outcome` says why (RefundRefusal)."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome, self.message = outcome, message


class RestateIngress:
    def __init__(
        self, ingress: httpx.AsyncClient, concurrency: int = 200, operator_token: str = ""
    ) -> None:
        self.ingress = ingress
        # ADMIN_TOKEN: what an operator's action carries into Restate, where the services
        # check it too (their handlers for it are public on Restate's ingress).
        self.operator_token = operator_token
        # At most `concurrency` requests at once (the ingress pool's size): the rest wait here,
        # in a plain queue. Queued inside httpx's pool instead, every request finished has the
        # pool scan each waiting request against each connection, and with thousands of SSE
        # clients (re)connecting at once that alone used up the gateway's CPU: streams timed
        # out waiting for the pool (5,000 clients, bench/sse_fanout.py).
        self.gate = asyncio.Semaphore(concurrency)

    async def _request(
        self, client: httpx.AsyncClient, method: str, path: str, **request: Any
    ) -> httpx.Response:
        async with self.gate:
            return await client.request(method, path, **request)

    async def _send(self, client: httpx.AsyncClient, path: str, **request: Any) -> httpx.Response:
        """POST to Restate; anything but a success is RestateUnavailable."""
        try:
            response = await self._request(client, "POST", path, **request)
        except httpx.HTTPError as e:
            raise RestateUnavailable(f"Restate unreachable at {client.base_url}: {e!r}") from e
        if not response.is_success:
            raise RestateUnavailable(
                f"Restate answered {response.status_code} to {path}: {response.text[:300]}"
            )
        return response

    async def _post(
        self, path: str, body: BaseModel | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST to a handler; a handler without input must get no body and no content-type."""
        if body is None:
            return await self._send(self.ingress, path, headers=headers)
        return await self._send(
            self.ingress,
            path,
            content=body.model_dump_json(),
            headers={"content-type": "application/json", **(headers or {})},
        )

    async def start_order(self, order: Order) -> None:
        """Start the order's workflow; a second start of the same order id starts nothing.
        The order remembers the trace it was placed in, for links to it."""
        order = order.model_copy(update={"trace_id": current_ids()[0]})
        response = await self._post(f"/{names.FULFILMENT}/{order.order_id}/run/send", order)
        if response.json()["status"] == "Accepted":  # or "PreviouslyAccepted"
            orders_started.add(1)

    async def start_keyed_order(self, key_ref: str, request: KeyedOrder) -> KeyedOrderReply:
        """Start the order unless the Idempotency-Key (its record `key_ref`) was used before."""
        order = request.order.model_copy(update={"trace_id": current_ids()[0]})
        request = request.model_copy(update={"order": order})
        response = await self._post(f"/{names.ORDER_KEYS}/{key_ref}/start", request)
        reply = KeyedOrderReply.model_validate_json(response.content)
        if reply.outcome == "started":
            orders_started.add(1)
        return reply

    async def order_status(self, order_id: str) -> OrderStatus:
        """The order's progress: the run's own while Restate keeps it, then the book's."""
        status, _ = await self.lookup(order_id)
        return status

    async def lookup(self, order_id: str) -> tuple[OrderStatus, bool]:
        """The order's status, and whether Restate still has its run (else it is the book's:
        the run was purged once its retention was over). OrderNotFound if neither has it."""
        response = await self._post(f"/{names.FULFILMENT}/{order_id}/get_status")
        status = OrderStatus.model_validate_json(response.content)
        if status.seq > 0 or await self._workflow_exists(order_id):
            return status, True
        response = await self._post(f"/{names.ORDER_BOOK}/status", OrderRef(order_id=order_id))
        booked = BookStatus.model_validate_json(response.content).status
        if booked is None:
            raise OrderNotFound(order_id)
        return booked, False

    async def payment_event(self, order_id: str, event: PaymentEvent) -> bool:
        """Hands a verified Stripe event to the order (False for an unknown order): queued by
        Restate (one-way), so it never waits for the order and survives the fulfilment
        service being down; an event delivered again is accepted once (its id is the key)."""
        if not await self._workflow_exists(order_id):  # answered by Restate, not by the order
            return False
        await self._post(
            f"/{names.FULFILMENT}/{order_id}/payment_authenticated/send",
            event,
            headers={"idempotency-key": event.event_id},
        )
        return True

    async def _workflow_exists(self, order_id: str) -> bool:
        """Whether a run was ever submitted under this id (it may not have reported yet)."""
        try:
            response = await self._request(
                self.ingress, "GET", f"/restate/workflow/{names.FULFILMENT}/{order_id}/output"
            )
        except httpx.HTTPError as e:
            raise RestateUnavailable(f"Restate ingress unreachable: {e!r}") from e
        return response.status_code != 404

    async def cancel_order(self, order_id: str, secret: str | None) -> str:
        """`cancelled` / `cancelling` when the order is (being) unwound; otherwise what the
        order is instead (`completed`, `failed`, `fulfilling`): too late to cancel.
        OrderNotFound for an unknown order, and for one `secret` may not cancel: to a
        caller without the order's secret, the order looks as if it did not exist."""
        status, running = await self.lookup(order_id)  # OrderNotFound for unknown ids
        if not running:  # only the book has it: long finished
            return status.status
        # The order checks the secret itself, then answers at its next step (or at once,
        # during the cancellation window, or when it is over).
        request = CancelRequest(secret=secret or "")
        response = await self._post(f"/{names.FULFILMENT}/{order_id}/cancel_with_secret", request)
        outcome = CancelReply.model_validate_json(response.content).outcome
        if outcome == "refused":
            raise OrderNotFound(order_id)
        if status.is_final:
            return status.status
        return "cancelling" if outcome == "cancelled" else outcome

    async def cancel_as_operator(self, order_id: str) -> str:
        """An operator cancels any order: `cancel_order` with the operators' token."""
        outcome = await self.cancel_order(order_id, self.operator_token)
        audit.info("operator cancelled order %s: %s", order_id, outcome)
        return outcome

    async def stock(self, sku: str) -> StockLevel:
        response = await self._post(f"/{names.INVENTORY}/{sku}/get")
        return StockLevel.model_validate_json(response.content)

    async def all_stock(self) -> dict[str, StockLevel]:
        levels = await asyncio.gather(*(self.stock(p.product_id) for p in PRODUCTS))
        return {level.sku: level for level in levels}

    async def set_stock(self, sku: str, update: StockUpdate) -> StockLevel:
        restock = Restock(quantity=update.quantity, operator_token=self.operator_token)
        response = await self._post(f"/{names.INVENTORY}/{sku}/restock", restock)
        audit.info("operator set stock of %s to %d available", sku, update.quantity)
        return StockLevel.model_validate_json(response.content)

    async def find_orders(self, where: OrderFilter, limit: int, cursor: str | None) -> OrderPage:
        """A page of the order book, newest first (operators)."""
        query = OrderQuery(
            filter=where, limit=limit, cursor=cursor, operator_token=self.operator_token
        )
        response = await self._post(f"/{names.ORDER_BOOK}/find", query)
        return OrderPage.model_validate_json(response.content)

    async def order_record(self, order_id: str) -> OrderRecord:
        """An order's full record in the book (operators); OrderNotFound if it has none."""
        lookup = OrderLookup(order_id=order_id, operator_token=self.operator_token)
        response = await self._post(f"/{names.ORDER_BOOK}/details", lookup)
        record = BookRecord.model_validate_json(response.content).record
        if record is None:
            raise OrderNotFound(order_id)
        return record

    async def refund(self, order_id: str, ask: RefundAsk) -> str:
        """Opens an operator's refund of the order (the same one again for the same request
        under its Idempotency-Key): its id, or RefundRefused saying why not."""
        ask = ask.model_copy(update={"operator_token": self.operator_token})
        response = await self._post(f"/{names.ORDERS}/{order_id}/refund", ask)
        opened = RefundOpened.model_validate_json(response.content)
        if opened.outcome not in ("started", "replayed") or opened.refund_id is None:
            raise RefundRefused(opened.outcome, opened.message)
        if opened.outcome == "started":
            amount = "all that is left" if ask.amount_cents is None else f"{ask.amount_cents}"
            audit.info("operator refunded %s of order %s: %s", amount, order_id, opened.refund_id)
        return opened.refund_id

    async def refund_record(self, order_id: str, refund_id: str) -> RefundEntry:
        """One refund of an order, as the book has it (operators); OrderNotFound if none."""
        lookup = RefundLookup(
            order_id=order_id, refund_id=refund_id, operator_token=self.operator_token
        )
        response = await self._post(f"/{names.ORDER_BOOK}/refund", lookup)
        found = BookRefund.model_validate_json(response.content).refund
        if found is None:
            raise OrderNotFound(f"{order_id} refund {refund_id}")
        return found

    async def public_refunds(self, order_id: str) -> list[PublicRefund]:
        """What the customer's page shows of the order's refunds."""
        response = await self._post(f"/{names.ORDER_BOOK}/refunds", OrderRef(order_id=order_id))
        return PublicRefunds.model_validate_json(response.content).refunds

    async def reconcile(self, ask: ReconciliationAsk) -> ReconciliationReport:
        """Starts a reconciliation of Stripe with the book (operators); `running` at first."""
        ask = ask.model_copy(update={"operator_token": self.operator_token})
        response = await self._post(f"/{names.RECONCILIATIONS}/request", ask)
        audit.info("operator reconciled %s to %s: %s", ask.since, ask.until, ask.reconciliation_id)
        return ReconciliationReport.model_validate_json(response.content)

    async def reconciliation(self, reconciliation_id: str) -> ReconciliationReport | None:
        lookup = ReconciliationLookup(
            reconciliation_id=reconciliation_id, operator_token=self.operator_token
        )
        response = await self._post(f"/{names.RECONCILIATIONS}/report", lookup)
        return BookReconciliation.model_validate_json(response.content).report

    async def recent_reconciliations(self, limit: int = 5) -> list[ReconciliationReport]:
        query = RecentReconciliations(limit=limit, operator_token=self.operator_token)
        response = await self._post(f"/{names.RECONCILIATIONS}/recent", query)
        return ReconciliationList.model_validate_json(response.content).reports

    async def keep_daily_reconciliation(self) -> str:
        """Plans the daily reconciliation if nothing has (idempotent): the day it runs next."""
        response = await self._post(f"/{names.RECONCILIATION_SCHEDULE}/daily/start")
        return response.json()

    async def invocations(self, order_id: str) -> list[InvocationInfo]:
        """The order's run and its unfinished calls, as Restate has them (operators)."""
        lookup = OrderLookup(order_id=order_id, operator_token=self.operator_token)
        response = await self._post(f"/{names.ORDER_BOOK}/invocations", lookup)
        return OrderInvocations.model_validate_json(response.content).invocations

    async def operate(
        self, order_id: str, invocation_id: str, action: OperatorActionKind, actor: str
    ) -> ActionRecord:
        """Resume, retry now or kill one of the order's invocations; recorded in the book."""
        request = OperatorAction(
            order_id=order_id,
            invocation_id=invocation_id,
            action=action,
            actor=actor,
            operator_token=self.operator_token,
        )
        response = await self._post(f"/{names.ORDER_BOOK}/operate", request)
        done = ActionRecord.model_validate_json(response.content)
        audit.info(
            "%s: %s %s of order %s: %s", actor, action, invocation_id, order_id, done.outcome
        )
        return done

    async def missing_services(self) -> set[str]:
        """Services not yet registered, or all of them when Restate does not answer."""
        try:
            health = await self._request(self.ingress, "GET", "/restate/health")
            if health.status_code != 200:
                return set(REQUIRED_SERVICES)
            answers = await asyncio.gather(
                *(
                    self._request(
                        self.ingress, "POST", f"/{name}/{path}", content=b"?", headers=PROBE
                    )
                    for name, path in PROBES.items()
                )
            )
        except httpx.HTTPError:
            return set(REQUIRED_SERVICES)
        return {
            name for name, answer in zip(PROBES, answers, strict=True) if answer.status_code != 400
        }
