"""The storefront in real headless Chromium: a cart, an order to 100% with its steps, a
declined card, a card confirmed at the bank (3-D Secure), a reload mid-order. Screenshots of
each final page go to test-artifacts/."""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from shop.dev.stack import REPO, Stack
from shop.shared.catalog import CATALOG

from .helpers import customer, track

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Offline machine: no background fetches, no first-run, no sandbox as root.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `./task browser` installs it")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 900, "height": 1000})
    yield page
    page.close()


def order_through_the_page(
    page: Page, stack: Stack, quantities: dict[str, int], method: str
) -> str:
    page.goto(stack.gateway_url)
    for sku, quantity in quantities.items():
        page.fill(f"input[name='qty.{sku}']", str(quantity))
    total = sum(CATALOG[sku].price_cents * q for sku, q in quantities.items())
    # The cart summary follows the quantities typed, priced from the catalog.
    page.wait_for_selector(f"#cart tr.total >> text={total / 100:.2f} EUR")
    email = customer()
    page.fill("#customer_email", email)
    page.select_option("#payment_method", method)
    page.click("button[type=submit]")
    page.wait_for_url("**/orders/ord_*")
    return track(page.url.rsplit("/", 1)[1], email)


def shot(page: Page, stack: Stack, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}-{stack.state.name}.png", full_page=True)


def test_an_order_placed_in_the_browser_reaches_100_percent(page: Page, stack: Stack) -> None:
    order_through_the_page(page, stack, {"mug-classic": 2, "sticker-pack": 3}, "pm_card_visa")
    # Stock reserved, live: the step stays done from here on, however fast the order goes on
    # (in the e2e stack the order sits at `reserved` for only a 1 s cancel window).
    page.wait_for_selector("ol.steps li.done >> text=Stock reserved", timeout=30_000)
    page.reload()  # a reload picks up where the order is
    page.wait_for_selector("[data-status=completed]", timeout=30_000)
    assert page.get_attribute("[data-status]", "data-percent") == "100"
    states = page.eval_on_selector_all("ol.steps li", "els => els.map(e => e.dataset.state)")
    assert states and set(states) == {"done"}
    shot(page, stack, "completed")


def test_a_declined_card_shows_the_failure(page: Page, stack: Stack) -> None:
    order_through_the_page(page, stack, {"cap-navy": 1}, "pm_card_chargeDeclined")
    page.wait_for_selector("[data-status=failed]", timeout=30_000)
    failed = page.text_content("ol.steps li.failed") or ""
    assert "declined" in failed
    shot(page, stack, "declined")


def test_a_card_that_needs_authentication_is_confirmed_at_the_bank(
    page: Page, stack: Stack
) -> None:
    order_id = order_through_the_page(
        page, stack, {"sticker-pack": 1}, "pm_card_threeDSecure2Required"
    )
    # The step arrives live (SSE): a link to the bank's page.
    confirm = page.locator("a[data-action=confirm-payment]")
    confirm.wait_for(timeout=30_000)
    assert confirm.text_content() == "Confirm the payment with your bank"
    # A reload mid-order picks up where it was: the order waits at the bank until confirmed.
    page.reload()
    confirm.wait_for(timeout=30_000)
    shot(page, stack, "bank-asks")
    confirm.click()
    page.wait_for_url(f"{stack.stripe_url}/3ds/**")
    page.get_by_role("button", name="Complete").click()
    # The bank sends the customer back to the order's page (the intent's return_url, with what
    # Stripe adds to it: ?payment_intent=...&redirect_status=succeeded).
    page.wait_for_url(re.compile(rf"/orders/{order_id}\?.*redirect_status=succeeded"))
    page.wait_for_selector("[data-status=completed]", timeout=30_000)
    assert page.locator("a[data-action=confirm-payment]").count() == 0
    shot(page, stack, "authenticated")


def test_validation_messages_show_next_to_the_field(page: Page, stack: Stack) -> None:
    page.goto(stack.gateway_url)
    page.fill("input[name='qty.mug-classic']", "1")
    page.fill("#customer_email", "not-an-email")
    page.click("button[type=submit]")
    page.wait_for_selector("span.error")
    assert "email" in (page.text_content("span.error") or "")


def test_only_the_customers_browser_can_cancel_even_after_a_reload(
    page: Page, browser: Browser, stack: Stack
) -> None:
    # The authorization takes 4 s: time to reload and press the button before it is done.
    httpx.put(f"{stack.stripe_url}/_emulator/faults", json={"latency_next": 1, "latency_ms": 4000})
    order_id = order_through_the_page(page, stack, {"sticker-pack": 1}, "pm_card_visa")
    page.reload()
    stranger = browser.new_page()  # another browser (no cookie): the tracking view only
    stranger.goto(page.url)
    stranger.wait_for_selector("[data-status]")
    assert stranger.locator("text=Cancel order").count() == 0
    stranger.close()
    page.click("text=Cancel order")
    page.wait_for_selector("[data-status=cancelled]", timeout=30_000)
    assert order_id in page.url
    shot(page, stack, "cancelled")
