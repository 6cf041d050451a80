"""One real stack per test session: Restate, Valkey, SMTP, the Stripe emulator and the five
services, on free ports in a temporary folder, started by the same code as `./task dev`."""

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from shop.dev.restate_harness import MODES
from shop.dev.stack import NO_CLIENT_LIMITS, Ports, Stack

from ..invariants import (
    REFUND_WORD,
    SUBJECT_WORD,
    Mail,
    book_agrees,
    booked,
    money_kept,
    refunds_done,
    stripe_client,
)
from .helpers import PLACED, eventually, final_status

# Every e2e test runs twice (MODES): on a normal server, and on one that suspends the handler
# after every step and replays its journal to go on, which catches non-determinism.
CANCEL_WINDOW_SECONDS = 1
# Short, so test_payment_auth's unanswered bank check times out quickly; long enough for the
# other 3-D Secure tests to answer well before it.
PAYMENT_AUTH_TIMEOUT_SECONDS = 20
MAX_ORDERS_IN_FLIGHT = 20  # per gateway; test_overload goes beyond it


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here drives a whole stack: marked e2e, so `pytest -m "not e2e"` (the fast
    loop) leaves them out."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", params=sorted(MODES))
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp(f"stack-{request.param}")
    (state / "crash").mkdir()
    stack = Stack(
        state=state,
        ports=Ports.free(),
        restate_env=MODES[request.param],
        service_env={
            "CANCEL_WINDOW_SECONDS": str(CANCEL_WINDOW_SECONDS),
            "PAYMENT_AUTH_TIMEOUT_SECONDS": str(PAYMENT_AUTH_TIMEOUT_SECONDS),
            "SSE_PING_SECONDS": "1",
            "CRASH_POINTS_DIR": str(state / "crash"),
            "MAX_ORDERS_IN_FLIGHT": str(MAX_ORDERS_IN_FLIGHT),
            # A step that keeps failing pauses after about 13 s (not 14 min): long enough for
            # a killed service to come back, short enough for test_operations to see it pause.
            "RETRY_MAX_ATTEMPTS": "10",
            "RETRY_INITIAL_SECONDS": "0.2",
            "RETRY_MAX_INTERVAL_SECONDS": "2",
            **NO_CLIENT_LIMITS,
        },
    )
    with stack.running(timeout=90):
        yield stack


@pytest.fixture(scope="session")
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def admin(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.shared_env()['ADMIN_TOKEN']}"}


@pytest.fixture(scope="session")
def stripe_api(stack: Stack) -> stripe.StripeClient:
    return stripe_client(stack.stripe_url)


@pytest.fixture(scope="session")
def mail(stack: Stack) -> Mail:
    return Mail(stack.maildir)


class Restate:
    """Operator's view of the engine: the admin API's SQL introspection."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def query(self, sql: str) -> list[dict[str, Any]]:
        response = httpx.post(
            f"{self.admin_url}/query",
            json={"query": sql},
            headers={"accept": "application/json"},
            timeout=10,
        )
        response.raise_for_status()
        return json.loads(response.text)["rows"]

    def workflow_runs(self) -> int:
        rows = self.query(
            "SELECT count(*) AS n FROM sys_invocation "
            "WHERE target_service_name = 'OrderFulfilment' AND target_handler_name = 'run'"
        )
        return int(rows[0]["n"])

    def workflow_runs_of(self, order_id: str) -> int:
        rows = self.query(
            "SELECT count(*) AS n FROM sys_invocation "
            f"WHERE target = 'OrderFulfilment/{order_id}/run'"
        )
        return int(rows[0]["n"])


@pytest.fixture(scope="session")
def restate_admin(stack: Stack) -> Restate:
    return Restate(stack.admin_url)


def put_back(stack: Stack) -> None:
    """What a test may switch on the shared stack, switched back, so that the next test finds
    it as the first did: every program running and ready, no Stripe or SMTP faults left
    pending, no crash point left armed."""
    stack.start_all()  # what a test stopped (and failed before starting again)
    stack.wait_ready(timeout=90)
    eventually(
        lambda: httpx.put(f"{stack.stripe_url}/_emulator/faults", json={}).is_success,
        what="the Stripe emulator's faults cleared",
        retry_on=(httpx.HTTPError,),
    )
    stack.smtp_faults.write_text("0")
    for point in (stack.state / "crash").iterdir():
        point.unlink()


@pytest.fixture(autouse=True)
def invariants(
    stack: Stack,
    gateway: httpx.Client,
    admin: dict[str, str],
    stripe_api: stripe.StripeClient,
    mail: "Mail",
) -> Iterator[None]:
    """After every e2e test on the shared stack: the stack put back as the test found it,
    then money kept only for completed orders (less what was refunded), stock conserved with
    nothing left reserved, one email per final order and per refund, and each order in the
    book with its final status and its refunds."""
    first = len(PLACED)
    yield
    put_back(stack)
    for order_id, email in PLACED[first:]:
        status = final_status(gateway, order_id, timeout=90)["status"]
        record = eventually(functools.partial(booked, gateway, admin, order_id), what="in the book")
        book_agrees(record, status)
        kept, held = money_kept(stripe_api, order_id)
        expected = record["total_cents"] - record["refunded_cents"] if status == "completed" else 0
        assert kept == expected and not held, (order_id, status, kept, expected, held)
        refunds = len(refunds_done(record))

        def all_received(o: str = order_id, e: str = email, n: int = 1 + refunds) -> int | None:
            return n if len(mail.received(e, o)) >= n else None

        received = eventually(all_received)
        subjects = sorted(m["Subject"] for m in mail.received(email, order_id).values())
        assert len(subjects) == received, (order_id, subjects)
        assert sum(SUBJECT_WORD[status] in s for s in subjects) == 1, (status, subjects)
        assert sum(REFUND_WORD in s for s in subjects) == refunds, (refunds, subjects)
    for product in gateway.get("/api/products").json():
        assert product["reserved"] == 0, product
        assert product["stocked"] == product["available"] + product["sold"], product
