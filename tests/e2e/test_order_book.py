"""The order book (the orders service, PostgreSQL): every order kept with its lines and
history, answered from there once Restate has purged its workflow, listed, filtered, paged and
exported for operators; a PostgreSQL crash delays the book and never an order."""

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx

from shop.dev.stack import Stack

from ..invariants import book_agrees, booked
from .conftest import Restate
from .helpers import cancel, customer, eventually, final_status, place, scraped, status_of

STICKERS = [{"product_id": "sticker-pack", "quantity": 3}]
DECLINED = "pm_card_chargeDeclined"


def record_of(gateway: httpx.Client, admin: dict[str, str], order_id: str) -> dict:
    return eventually(lambda: booked(gateway, admin, order_id), what=f"{order_id} in the book")


def test_each_order_is_kept_with_its_lines_customer_and_history(
    gateway: httpx.Client, admin: dict[str, str]
) -> None:
    email = customer()
    done = place(gateway, STICKERS, email=email)
    declined = place(gateway, STICKERS, email=email, payment_method=DECLINED)
    assert final_status(gateway, done)["status"] == "completed"
    assert final_status(gateway, declined)["status"] == "failed"

    record = record_of(gateway, admin, done)
    book_agrees(record, "completed", total_cents=1200)
    assert record["customer_email"] == email and record["currency"] == "eur"
    sticker = {"product_id": "sticker-pack", "name": "Sticker pack", "unit_price_cents": 400}
    assert record["lines"] == [{**sticker, "quantity": 3}]
    assert record["payment_intent_id"].startswith("pi_")
    # Each change of status (running, then final), with the step it happened at.
    assert [(h["status"], h["step"]) for h in record["history"]] == [
        ("running", "received"),
        ("completed", "completed"),
    ]
    assert record["history"][-1]["message"] == status_of(gateway, done)["message"]

    failed = record_of(gateway, admin, declined)
    book_agrees(failed, "failed", total_cents=1200)
    assert failed["reason"] and failed["history"][-1]["reason"] == failed["reason"]
    assert failed["payment_intent_id"] is None


def test_a_cancelled_order_is_booked_cancelled(
    gateway: httpx.Client, admin: dict[str, str]
) -> None:
    order_id = place(gateway, STICKERS)
    assert cancel(gateway, order_id).status_code in (200, 202)
    assert final_status(gateway, order_id)["status"] == "cancelled"
    book_agrees(record_of(gateway, admin, order_id), "cancelled")


def test_an_order_restate_no_longer_keeps_is_answered_from_the_book(
    gateway: httpx.Client, admin: dict[str, str], restate_admin: Restate
) -> None:
    order_id = place(gateway, STICKERS)
    before = final_status(gateway, order_id)
    invocation = record_of(gateway, admin, order_id)["invocation_id"]
    # What the workflow's retention does after 7 days, done now.
    purged = httpx.patch(f"{restate_admin.admin_url}/invocations/{invocation}/purge", timeout=10)
    assert purged.is_success, purged.text
    eventually(lambda: restate_admin.workflow_runs_of(order_id) == 0, what="the run purged")

    assert status_of(gateway, order_id) == before  # same shape, nothing personal
    events = gateway.get(f"/api/orders/{order_id}/events").text
    assert "event: complete" in events and "buyer-" not in events
    assert gateway.get(f"/orders/{order_id}").status_code == 200
    too_late = gateway.post(f"/api/orders/{order_id}/cancel", headers={"Order-Secret": "x"})
    assert too_late.status_code == 409
    assert gateway.get("/api/orders/ord_000000000000000000000000").status_code == 404


def test_operators_list_filter_page_and_export_the_book(
    gateway: httpx.Client, admin: dict[str, str]
) -> None:
    email = customer()
    since = datetime.now(UTC) - timedelta(seconds=1)
    ids = [place(gateway, STICKERS, email=email) for _ in range(3)]
    ids.append(place(gateway, [{"product_id": "mug-classic", "quantity": 1}], email=email))
    ids.append(place(gateway, STICKERS, email=email, payment_method=DECLINED))
    for order_id in ids:
        final_status(gateway, order_id)
        record_of(gateway, admin, order_id)

    def page(**params: str | int) -> dict:
        response = gateway.get("/api/admin/orders", params=params, headers=admin)
        assert response.status_code == 200, response.text
        return response.json()

    # Newest first, two at a time, every order once.
    seen, cursor = [], None
    while True:
        body = page(email=email.upper(), limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(body["orders"]) <= 2
        seen += [o["order_id"] for o in body["orders"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    first = page(email=email)["orders"][0]
    assert set(first) == {
        "order_id",
        "status",
        "customer_email",
        "total_cents",
        "currency",
        "created_at",
        "updated_at",
    }
    assert [o["order_id"] for o in page(email=email, status="failed")["orders"]] == [ids[4]]
    mugs = page(email=email, product_id="mug-classic")["orders"]
    assert [o["order_id"] for o in mugs] == [ids[3]]
    assert page(email=email, until=since.isoformat())["orders"] == []
    assert len(page(email=email, since=since.isoformat())["orders"]) == 5

    export = gateway.get("/api/admin/orders.csv", params={"email": email}, headers=admin)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["order_id"] for r in rows] == list(reversed(ids))
    assert {r["status"] for r in rows} == {"completed", "failed"}
    assert rows[0]["customer_email"] == email and rows[0]["total_cents"] == "1200"


BAD_FILTERS = [
    ({"status": "lost"}, "status"),
    ({"limit": "0"}, "limit"),
    ({"limit": "201"}, "limit"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"since": "yesterday"}, "since"),
    ({"until": "0.5"}, "until"),
    ({"since": "2026-12-02", "until": "2026-12-01"}, "until"),
    ({"product_id": "DROP TABLE"}, "product_id"),
    ({"email": "a\x00b@example.com"}, "email"),
    ({"colour": "red"}, "colour"),
]


def test_a_bad_filter_is_422_naming_the_field(gateway: httpx.Client, admin: dict[str, str]) -> None:
    for params, field in BAD_FILTERS:
        for path in ("/api/admin/orders", "/api/admin/orders.csv"):
            response = gateway.get(path, params=params, headers=admin)
            assert response.status_code == 422, (path, params, response.text)
            assert field in response.json()["fields"], (params, response.json())


def test_the_book_is_for_operators_only(gateway: httpx.Client, admin: dict[str, str]) -> None:
    order_id = place(gateway, STICKERS)
    final_status(gateway, order_id)
    for path in ("/api/admin/orders", "/api/admin/orders.csv", f"/api/admin/orders/{order_id}"):
        assert gateway.get(path).status_code == 401
        assert gateway.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    unknown = gateway.get("/api/admin/orders/ord_000000000000000000000000", headers=admin)
    assert unknown.status_code == 404
    assert gateway.get("/api/admin/orders/nope", headers=admin).status_code == 404


def test_a_postgresql_crash_delays_the_book_never_an_order(
    stack: Stack, gateway: httpx.Client, admin: dict[str, str]
) -> None:
    email = customer()
    ids = [place(gateway, STICKERS, email=email) for _ in range(3)]
    stack.crash("postgres")  # SIGKILL, kept down
    # What another pytest session does to the folders above the stack (pytest keeps its own
    # private): PostgreSQL, run as its own user, must still find its data when it restarts.
    stack.state.chmod(0o700)
    ids += [place(gateway, STICKERS, email=email) for _ in range(3)]
    # Every order ends while the book cannot write: nothing waits for it.
    assert {final_status(gateway, o, timeout=90)["status"] for o in ids} == {"completed"}
    # What BookLagging reads: the changes Restate holds for the book, and the oldest's age.
    behind = eventually(
        lambda: (m := scraped(stack, "orders"))["shop_book_backlog"] >= 3 and m,
        what="the book's backlog counted",
    )
    assert behind["shop_book_lag_seconds"] > 0
    stack.ctl("start", "postgres")
    for order_id in ids:  # Restate retried the writes; each order once, final
        book_agrees(record_of(gateway, admin, order_id), "completed", total_cents=1200)
    eventually(
        lambda: scraped(stack, "orders")["shop_book_lag_seconds"] == 0,
        what="the book caught up, as its lag says",
    )
    listed = gateway.get("/api/admin/orders", params={"email": email}, headers=admin).json()
    assert sorted(o["order_id"] for o in listed["orders"]) == sorted(ids)
