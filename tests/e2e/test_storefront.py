"""The HTML storefront: the page, the form post and the order page."""

import re

import httpx
import pytest

from shop.dev.stack import Stack

from .helpers import available, customer, eventually, final_status, matched, track


def test_store_page_lists_products_with_price_and_stock(gateway: httpx.Client) -> None:
    page = gateway.get("/")
    assert page.status_code == 200
    assert "Classic mug" in page.text and "12.00 EUR" in page.text
    assert 'data-stock="mug-classic"' in page.text
    assert "/static/htmx-2.0.8.min.js" in page.text
    assert gateway.get("/static/htmx-2.0.8.min.js").status_code == 200
    assert gateway.get("/static/htmx-ext-sse-2.2.4.min.js").status_code == 200


def form_key(page: str) -> str:
    match = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_form_post_places_one_order_even_when_sent_twice(gateway: httpx.Client) -> None:
    key = form_key(gateway.get("/").text)
    form = {
        "customer_email": customer(),
        "payment_method": "pm_card_visa",
        "qty.tee-logo": "1",
        "idempotency_key": key,
    }
    first = gateway.post("/orders", data=form)
    second = gateway.post("/orders", data=form)  # a double click
    assert first.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    order_id = track(first.headers["location"].rsplit("/", 1)[1], form["customer_email"])
    assert final_status(gateway, order_id)["status"] == "completed"
    page = gateway.get(f"/orders/{order_id}")
    assert page.status_code == 200 and 'data-status="completed"' in page.text


def test_htmx_form_post_redirects_the_browser(gateway: httpx.Client) -> None:
    form = {"customer_email": customer(), "qty.sticker-pack": "2"}
    response = gateway.post("/orders", data=form, headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("/orders/ord_")
    track(response.headers["HX-Redirect"].rsplit("/", 1)[1], form["customer_email"])


def test_form_errors_are_shown_next_to_the_field(gateway: httpx.Client) -> None:
    response = gateway.post("/orders", data={"customer_email": "nope", "qty.mug-classic": "500"})
    assert response.status_code == 422
    assert "valid email address" in response.text
    assert "less than or equal to 100" in response.text
    empty = gateway.post("/orders", data={"customer_email": customer()})
    assert empty.status_code == 422 and "at least 1 item" in empty.text


def test_order_page_streams_progress_fragments(gateway: httpx.Client) -> None:
    form = {"customer_email": customer(), "qty.sticker-pack": "1"}
    location = gateway.post("/orders", data=form).headers["location"]
    order_id = track(location.rsplit("/", 1)[1], form["customer_email"])
    with gateway.stream("GET", f"/orders/{order_id}/stream") as stream:
        text = "".join(stream.iter_text())
    assert "event: done" in text and 'data-status="completed"' in text


def test_cart_summary_prices_lines_from_the_catalog(gateway: httpx.Client) -> None:
    summary = gateway.post("/cart", data={"qty.mug-classic": "2", "qty.cap-navy": "1"}).text
    assert "2 \u00d7 Classic mug" in summary and "42.00 EUR" in summary
    assert "empty" in gateway.post("/cart", data={"qty.mug-classic": "0"}).text


def test_operator_page_needs_the_token_and_lists_orders_and_stock(
    gateway: httpx.Client, stack: Stack
) -> None:
    denied = gateway.get("/admin")
    assert denied.status_code == 401 and denied.headers["www-authenticate"].startswith("Basic")
    token = stack.shared_env()["ADMIN_TOKEN"]
    assert gateway.get("/admin", auth=("admin", "wrong")).status_code == 401
    form = {"customer_email": customer(), "qty.sticker-pack": "1"}
    location = gateway.post("/orders", data=form).headers["location"]
    order_id = track(location.rsplit("/", 1)[1], form["customer_email"])
    final_status(gateway, order_id)

    def listed() -> str | None:
        page = gateway.get("/admin", auth=("admin", token)).text
        return page if order_id in page else None

    page = eventually(listed, what="the order in the operator's list (from the book)")
    assert form["customer_email"] in page and "4.00 EUR" in page
    assert 'data-sku="poster-a2"' in page
    one = gateway.get(f"/admin/orders/{order_id}", auth=("admin", token))
    assert one.status_code == 200 and "/ui/invocations/inv_" in one.text
    assert "Sticker pack" in one.text and "Order received" in one.text
    # A filter the book cannot take is said on the page, beside the filters.
    bad = gateway.get("/admin", params={"status": "lost"}, auth=("admin", token))
    assert bad.status_code == 422 and "status:" in bad.text
    # The page's actions carry its CSRF token, as htmx sends it.
    csrf = {"X-CSRF-Token": matched(r'"X-CSRF-Token": "(\w+)"', page)}
    row = gateway.post(
        "/admin/stock/poster-a2", data={"quantity": "9"}, auth=("admin", token), headers=csrf
    )
    assert row.status_code == 200 and ">9<" in row.text
    bad = gateway.post(
        "/admin/stock/poster-a2", data={"quantity": "-2"}, auth=("admin", token), headers=csrf
    )
    assert bad.status_code == 422 and 'class="error"' in bad.text
    assert gateway.post("/admin/stock/poster-a2", data={"quantity": "3"}).status_code == 401


@pytest.mark.parametrize(
    "forged",
    [
        {},  # a cross-site form post carries no CSRF token
        {"X-CSRF-Token": "0" * 64},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
    ],
    ids=["no-token", "wrong-token", "cross-site", "other-origin"],
)
def test_a_cross_site_post_with_the_browsers_credentials_changes_nothing(
    gateway: httpx.Client, stack: Stack, forged: dict[str, str]
) -> None:
    """A page elsewhere can make the browser post to the operator page's actions, with the
    Basic credentials it has cached for this site: refused, and nothing changes."""
    token = stack.shared_env()["ADMIN_TOKEN"]
    page = gateway.get("/admin", auth=("admin", token)).text
    headers = {"X-CSRF-Token": matched(r'"X-CSRF-Token": "(\w+)"', page), **forged}
    if not forged:
        del headers["X-CSRF-Token"]
    before = available(gateway, "poster-a2")
    for path, data in [
        ("/admin/stock/poster-a2", {"quantity": "0"}),
        ("/api/admin/orders/ord_000000000000000000000000/cancel", None),
    ]:
        answer = gateway.post(path, data=data, auth=("admin", token), headers=headers)
        assert answer.status_code == 403, (path, answer.text)
    assert available(gateway, "poster-a2") == before


def test_pages_tell_the_browser_what_they_may_do(gateway: httpx.Client) -> None:
    """Scripts from the gateway only, never framed by another site (clickjacking the cancel
    button), no sniffing, no order ids in the Referer sent elsewhere."""
    page = gateway.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
