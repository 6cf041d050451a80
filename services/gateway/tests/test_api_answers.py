"""What the JSON API answers, to the byte, against a stand-in for Restate's ingress: the keys,
their order, what is left out and when, the status codes, and the admin credentials'
answers. (The OpenAPI document describes these bodies; these tests hold the bodies still.)"""

import base64
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from shop.gateway.admission import InFlight
from shop.gateway.app import create_app
from shop.gateway.client_limits import ClientLimits
from shop.gateway.deps import csrf_token
from shop.gateway.restate_ingress import RestateIngress
from shop.gateway.settings import GatewaySettings

TOKEN = "5d2f8a91c7e04b36a8f1d9c2e7b40a6f"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
AT = "2026-12-01T10:00:00Z"

RUNNING = "ord_000000000000000000000001"
AT_BANK = "ord_000000000000000000000002"
DONE = "ord_000000000000000000000003"
FAILED = "ord_000000000000000000000004"
CANCELLED = "ord_000000000000000000000005"
UNKNOWN = "ord_ffffffffffffffffffffffff"
REFUND = "ref_0123456789abcdef01234567"


def status(order_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "status": "running",
        "step": "reserved",
        "percent": 60,
        "message": "Stock reserved",
        "seq": 4,
        "cancellable": True,
        "result": None,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "action_url": None,
        **fields,
    }


def result(order_id: str, state: str, reason: str | None, last_step: str | None) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "status": state,
        "payment_intent_id": "pi_secret_to_operators",
        "reason": reason,
        "last_step": last_step,
    }


STATUSES = {
    RUNNING: status(RUNNING),
    AT_BANK: status(
        AT_BANK,
        step="authenticating",
        percent=20,
        message="Confirm with your bank",
        trace_id=None,
        action_url="https://bank.example/3ds/1",
    ),
    DONE: status(
        DONE,
        status="completed",
        step="completed",
        percent=100,
        message="Done",
        seq=7,
        cancellable=False,
        result=result(DONE, "completed", None, None),
    ),
    FAILED: status(
        FAILED,
        status="failed",
        step="failed",
        percent=100,
        message="Declined",
        seq=3,
        cancellable=False,
        result=result(FAILED, "failed", "card declined", "authorized"),
    ),
    CANCELLED: status(
        CANCELLED,
        status="cancelled",
        step="cancelled",
        percent=100,
        message="Cancelled",
        seq=5,
        cancellable=False,
        result=result(CANCELLED, "cancelled", "cancelled by the customer", "reserved"),
    ),
}
SUMMARY = {
    "order_id": DONE,
    "status": "completed",
    "customer_email": "ann@example.com",
    "total_cents": 2400,
    "currency": "eur",
    "created_at": AT,
    "updated_at": AT,
}
REFUND_ENTRY = {
    "refund_id": REFUND,
    "order_id": DONE,
    "amount_cents": 500,
    "currency": "eur",
    "reason": "scratched",
    "restock": False,
    "status": "succeeded",
    "failure_reason": None,
    "stripe_refund_id": "re_1",
    "requested_at": AT,
    "updated_at": AT,
}
RECORD = {
    **SUMMARY,
    "lines": [
        {
            "product_id": "mug-classic",
            "name": "Classic mug",
            "quantity": 2,
            "unit_price_cents": 1200,
        }
    ],
    "step": "completed",
    "percent": 100,
    "message": "Done",
    "reason": None,
    "payment_intent_id": "pi_1",
    "fulfilment_version": "v1",
    "trace_id": None,
    "invocation_id": "inv_1",
    "history": [
        {"status": "completed", "step": "completed", "message": "Done", "at": AT, "reason": None}
    ],
    "refunds": [REFUND_ENTRY],
    "refunded_cents": 500,
    "actions": [],
}
REPORT = {
    "reconciliation_id": "rec_0123456789abcdef01234567",
    "status": "completed",
    "since": "2026-12-01T00:00:00Z",
    "until": "2026-12-02T00:00:00Z",
    "checked_orders": 3,
    "checked_intents": 4,
    "discrepancies": [
        {
            "kind": "open_hold",
            "order_id": RUNNING,
            "payment_intent": "pi_9",
            "expected_cents": 0,
            "actual_cents": 1200,
        }
    ],
    "error": None,
    "started_at": AT,
    "finished_at": None,
}
INVOCATION = {
    "invocation_id": "inv_1aBc",
    "target": f"OrderFulfilment/{DONE}/run",
    "status": "paused",
    "retry_count": 3,
    "last_failure": "boom",
}


def compact(body: object) -> bytes:
    """JSON as the gateway writes it: no spaces, UTF-8."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class Restate:
    """Knows the orders above; `cancel`, `keyed` and `refund` say how it answers those."""

    def __init__(self) -> None:
        self.cancel = "cancelled"
        self.keyed = "started"
        self.refund = "started"

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body: Any = json.loads(request.content) if request.content else None
        if request.method == "GET":  # a workflow's output: 470 while it runs, 404 for none
            return httpx.Response(470 if UNKNOWN not in path else 404)
        service, *rest = path.strip("/").split("/")
        handler = rest[-1]
        answer: Any
        if (service, handler) == ("OrderFulfilment", "send"):
            answer = {"invocationId": "inv_1", "status": "Accepted"}
        elif (service, handler) == ("OrderKeys", "start"):
            answer = {"outcome": self.keyed, "order_id": RUNNING}
        elif (service, handler) == ("OrderFulfilment", "get_status"):
            answer = STATUSES.get(rest[0]) or status(
                rest[0], status="pending", step="pending", seq=0, percent=0
            )
        elif (service, handler) == ("OrderBook", "status"):
            answer = {"status": None}
        elif (service, handler) == ("OrderFulfilment", "cancel_with_secret"):
            answer = {"order_id": rest[0], "outcome": self.cancel}
        elif service == "Inventory":
            quantity = body["quantity"] if handler == "restock" else 7
            answer = {
                "sku": rest[0],
                "available": quantity,
                "reserved": 2,
                "sold": 1,
                "stocked": quantity + 3,
            }
        elif (service, handler) == ("OrderBook", "find"):
            answer = {"orders": [SUMMARY], "next_cursor": None}
        elif (service, handler) == ("OrderBook", "details"):
            answer = {"record": RECORD if body["order_id"] == DONE else None}
        elif (service, handler) == ("Orders", "refund"):
            answer = {"outcome": self.refund, "refund_id": REFUND, "message": "only 5.00 EUR left"}
        elif (service, handler) == ("OrderBook", "refund"):
            answer = {"refund": REFUND_ENTRY}
        elif (service, handler) == ("Reconciliations", "request"):
            answer = {**REPORT, "reconciliation_id": body["reconciliation_id"], "status": "running"}
        elif (service, handler) == ("Reconciliations", "report"):
            answer = {
                "report": REPORT
                if body["reconciliation_id"] == REPORT["reconciliation_id"]
                else None
            }
        elif (service, handler) == ("OrderBook", "invocations"):
            answer = {"invocations": [INVOCATION]}
        elif (service, handler) == ("OrderBook", "operate"):
            answer = {key: body[key] for key in ("action", "invocation_id", "actor")}
            answer |= {"target": INVOCATION["target"], "outcome": "done", "at": AT}
        else:
            return httpx.Response(404)
        return httpx.Response(200, json=answer)


@pytest.fixture
def restate() -> Restate:
    return Restate()


@pytest.fixture
async def gateway(restate: Restate) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(shop_dev_mode=True, admin_token=SecretStr(TOKEN))
    app = create_app(settings)  # without its lifespan: what it would set up, set here
    restate_api = httpx.AsyncClient(
        base_url="http://restate", transport=httpx.MockTransport(restate.handle)
    )
    app.state.settings = settings
    app.state.ingress = RestateIngress(restate_api, operator_token=TOKEN)
    app.state.in_flight = InFlight(10, 60)
    app.state.client_limits = ClientLimits(0, 0, 0, 0)
    app.state.hub = type("Hub", (), {"connected": True})()
    transport = httpx.ASGITransport(app=app)
    async with restate_api, httpx.AsyncClient(base_url="http://gw", transport=transport) as client:
        yield client


ORDER = {
    "customer_email": "ann@example.com",
    "items": [{"product_id": "mug-classic", "quantity": 1}],
}


async def test_a_placed_order_s_answer(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post("/api/orders", json=ORDER)
    assert response.status_code == 202
    order_id = response.json()["order_id"]
    assert re.fullmatch(r"ord_[0-9a-f]{24}", order_id)
    secret = response.json()["order_secret"]
    assert re.fullmatch(r"osec_[A-Za-z0-9_-]{32}", secret)
    assert response.content == compact(
        {
            "order_id": order_id,
            "order_secret": secret,
            "status_url": f"/api/orders/{order_id}",
            "events_url": f"/api/orders/{order_id}/events",
            "cancel_url": f"/api/orders/{order_id}/cancel",
        }
    )
    assert response.headers["content-type"] == "application/json"


async def test_the_same_key_again_answers_without_the_secret(
    gateway: httpx.AsyncClient, restate: Restate
) -> None:
    restate.keyed = "replayed"
    response = await gateway.post("/api/orders", json=ORDER, headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 202
    assert response.content == compact(
        {
            "order_id": RUNNING,
            "status_url": f"/api/orders/{RUNNING}",
            "events_url": f"/api/orders/{RUNNING}/events",
            "cancel_url": f"/api/orders/{RUNNING}/cancel",
        }
    )


PUBLIC = ("order_id", "status", "step", "percent", "message", "cancellable")


@pytest.mark.parametrize(
    ("order_id", "expected"),
    [
        # Unfinished: no result, and no action_url unless the bank waits (trace_id even null).
        (
            RUNNING,
            {
                **{k: STATUSES[RUNNING][k] for k in PUBLIC},
                "trace_id": STATUSES[RUNNING]["trace_id"],
            },
        ),
        (
            AT_BANK,
            {
                **{k: STATUSES[AT_BANK][k] for k in PUBLIC},
                "trace_id": None,
                "action_url": "https://bank.example/3ds/1",
            },
        ),
        # Final: the result without the payment's id; its reason also at the top, if any.
        (
            DONE,
            {
                **{k: STATUSES[DONE][k] for k in PUBLIC},
                "result": {
                    "order_id": DONE,
                    "status": "completed",
                    "reason": None,
                    "last_step": None,
                },
                "trace_id": STATUSES[DONE]["trace_id"],
            },
        ),
        (
            FAILED,
            {
                **{k: STATUSES[FAILED][k] for k in PUBLIC},
                "result": {
                    "order_id": FAILED,
                    "status": "failed",
                    "reason": "card declined",
                    "last_step": "authorized",
                },
                "trace_id": STATUSES[FAILED]["trace_id"],
                "reason": "card declined",
            },
        ),
    ],
)
async def test_an_order_s_status(
    gateway: httpx.AsyncClient, order_id: str, expected: dict[str, Any]
) -> None:
    response = await gateway.get(f"/api/orders/{order_id}")
    assert response.status_code == 200
    assert response.content == compact(expected)


async def test_an_unknown_order_s_status(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get(f"/api/orders/{UNKNOWN}")
    assert (response.status_code, response.content) == (
        404,
        compact({"error": f"no order {UNKNOWN}"}),
    )


@pytest.mark.parametrize("operator", [False, True])
@pytest.mark.parametrize(
    ("order_id", "outcome", "code", "expected"),
    [
        (
            RUNNING,
            "cancelled",
            202,
            {"order_id": RUNNING, "status": "cancelling", "status_url": f"/api/orders/{RUNNING}"},
        ),
        (CANCELLED, "cancelled", 200, {"order_id": CANCELLED, "status": "cancelled"}),
        (RUNNING, "fulfilling", 409, {"error": "too late to cancel: the order is fulfilling"}),
        (DONE, "fulfilling", 409, {"error": "too late to cancel: the order is completed"}),
        (RUNNING, "refused", 404, {"error": f"no order {RUNNING}"}),
    ],
)
async def test_a_cancel_s_answer(
    gateway: httpx.AsyncClient,
    restate: Restate,
    operator: bool,
    order_id: str,
    outcome: str,
    code: int,
    expected: dict[str, Any],
) -> None:
    restate.cancel = outcome
    if operator:
        response = await gateway.post(f"/api/admin/orders/{order_id}/cancel", headers=BEARER)
    else:
        response = await gateway.post(
            f"/api/orders/{order_id}/cancel", headers={"Order-Secret": "osec_x"}
        )
    assert (response.status_code, response.content) == (code, compact(expected))


async def test_the_products(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/products")
    assert response.status_code == 200
    first = {
        "product_id": "mug-classic",
        "name": "Classic mug",
        "price_cents": 1200,
        "currency": "eur",
        "available": 7,
        "reserved": 2,
        "sold": 1,
        "stocked": 10,
    }
    assert response.content.startswith(b"[" + compact(first) + b",")
    assert len(response.json()) == 5


async def test_setting_stock(gateway: httpx.AsyncClient) -> None:
    response = await gateway.put(
        "/api/admin/products/cap-navy/stock", json={"quantity": 4}, headers=BEARER
    )
    assert response.status_code == 200
    assert response.content == compact(
        {"sku": "cap-navy", "available": 4, "reserved": 2, "sold": 1, "stocked": 7}
    )
    unknown = await gateway.put(
        "/api/admin/products/nope/stock", json={"quantity": 4}, headers=BEARER
    )
    assert (unknown.status_code, unknown.content) == (
        404,
        compact({"error": "unknown product 'nope'"}),
    )


async def test_the_book_s_answers(gateway: httpx.AsyncClient) -> None:
    page = await gateway.get("/api/admin/orders", headers=BEARER)
    assert (page.status_code, page.content) == (
        200,
        compact({"orders": [SUMMARY], "next_cursor": None}),
    )
    record = await gateway.get(f"/api/admin/orders/{DONE}", headers=BEARER)
    assert (record.status_code, record.content) == (200, compact(RECORD))
    refund = await gateway.get(f"/api/admin/orders/{DONE}/refunds/{REFUND}", headers=BEARER)
    assert (refund.status_code, refund.content) == (200, compact(REFUND_ENTRY))
    calls = await gateway.get(f"/api/admin/orders/{DONE}/invocations", headers=BEARER)
    assert (calls.status_code, calls.content) == (200, compact({"invocations": [INVOCATION]}))


async def test_a_refund_s_answer(gateway: httpx.AsyncClient, restate: Restate) -> None:
    ask = {"reason": "scratched"}
    response = await gateway.post(f"/api/admin/orders/{DONE}/refunds", json=ask, headers=BEARER)
    assert response.status_code == 202
    assert response.content == compact(
        {
            "refund_id": REFUND,
            "order_id": DONE,
            "status_url": f"/api/admin/orders/{DONE}/refunds/{REFUND}",
        }
    )
    restate.refund = "too_much"
    refused = await gateway.post(f"/api/admin/orders/{DONE}/refunds", json=ask, headers=BEARER)
    assert (refused.status_code, refused.content) == (409, compact({"error": "only 5.00 EUR left"}))


async def test_a_reconciliation_s_answers(gateway: httpx.AsyncClient) -> None:
    window = {"since": "2026-12-01", "until": "2026-12-02"}
    started = await gateway.post("/api/admin/reconciliations", json=window, headers=BEARER)
    assert started.status_code == 202
    rid = started.json()["reconciliation_id"]
    assert started.content == compact(
        {"reconciliation_id": rid, "status_url": f"/api/admin/reconciliations/{rid}"}
    )
    report = await gateway.get(
        f"/api/admin/reconciliations/{REPORT['reconciliation_id']}", headers=BEARER
    )
    assert (report.status_code, report.content) == (200, compact(REPORT))
    none = await gateway.get("/api/admin/reconciliations/rec_nope", headers=BEARER)
    assert (none.status_code, none.content) == (
        404,
        compact({"error": "no reconciliation rec_nope"}),
    )


def basic(credentials: bytes) -> str:
    return "Basic " + base64.b64encode(credentials).decode()


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {TOKEN}"},
        {"Authorization": f"bearer {TOKEN}"},
        {"Authorization": f"Bearer  {TOKEN}"},  # RFC 7235: one or more spaces (HTTPBearer)
        {"Authorization": basic(f"ann:{TOKEN}".encode())},
        {"Authorization": basic(f"José:{TOKEN}".encode())},  # any user name, in UTF-8
        {"Authorization": basic(f":{TOKEN}".encode())},
    ],
)
async def test_the_admin_credentials(gateway: httpx.AsyncClient, headers: dict[str, str]) -> None:
    assert (await gateway.get("/api/admin/orders", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong",
        f"Bearer {TOKEN}x",
        f"Token {TOKEN}",
        TOKEN,
        "Basic",
        "Basic !!!not-base64",
        basic(TOKEN.encode()),  # no user name, no colon: the token is no password
        basic(f"ann:{TOKEN}x".encode()),
        basic(b"ann:\xff" + TOKEN.encode()),  # not UTF-8
    ],
)
async def test_wrong_admin_credentials(
    gateway: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in [
        ("GET", "/api/admin/orders"),
        ("POST", f"/api/admin/orders/{DONE}/refunds"),
    ]:
        response = await gateway.request(method, path, headers=headers, json={"reason": "x"})
        assert response.status_code == 401
        assert response.content == compact({"error": "missing or wrong admin token"})
        assert response.headers["www-authenticate"] == 'Basic realm="shop admin"'


async def test_an_action_from_a_browser_needs_the_page_s_csrf_token(
    gateway: httpx.AsyncClient,
) -> None:
    path = f"/api/admin/orders/{DONE}/actions"
    action = {"action": "resume", "invocation_id": "inv_1aBc"}
    browser = {"Authorization": basic(f"ann:{TOKEN}".encode()), "Sec-Fetch-Site": "same-origin"}
    refused = await gateway.post(path, json=action, headers=browser)
    assert (refused.status_code, refused.content) == (
        403,
        compact({"error": "missing or wrong CSRF token: act from the operator page"}),
    )
    done = await gateway.post(
        path, json=action, headers={**browser, "X-CSRF-Token": csrf_token(TOKEN)}
    )
    assert done.status_code == 200
    assert done.content == compact(
        {
            "action": "resume",
            "invocation_id": "inv_1aBc",
            "target": INVOCATION["target"],
            "actor": "operator page (ann)",
            "outcome": "done",
            "at": AT,
        }
    )
    by_api = await gateway.post(path, json=action, headers=BEARER)
    assert by_api.json()["actor"] == "api (Bearer token)"
    cross = await gateway.post(
        path, json=action, headers={**BEARER, "Sec-Fetch-Site": "cross-site"}
    )
    assert (cross.status_code, cross.content) == (
        403,
        compact({"error": "cross-site request refused"}),
    )
