"""One real stack per test session: Restate, Valkey, SMTP, the Stripe emulator and the five
services, on free ports in a temporary folder, started by the same code as `./task dev`."""

import json
import mailbox
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import stripe

from shop.dev.stack import Ports, Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(state=tmp_path_factory.mktemp("stack"), ports=Ports.free())
    log = (stack.state / "supervisord.out").open("w")
    process = subprocess.Popen(stack.command(), stdout=log, stderr=subprocess.STDOUT)
    try:
        stack.wait_ready(timeout=90)
        yield stack
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="session")
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def stripe_api(stack: Stack) -> stripe.StripeClient:
    """The Stripe API as an operator would query it, through the official SDK."""
    return stripe.StripeClient("sk_test_e2e", base_addresses={"api": stack.stripe_url})


class Mail:
    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir

    def to(self, address: str, order_id: str) -> list[mailbox.MaildirMessage]:
        box = mailbox.Maildir(self.maildir, create=False)
        return [m for m in box if m["To"] == address and order_id in (m["Subject"] or "")]


@pytest.fixture(scope="session")
def mail(stack: Stack) -> Mail:
    return Mail(stack.maildir)


class Restate:
    """Operator's view of the engine: the admin API's SQL introspection."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def query(self, sql: str) -> list[dict[str, object]]:
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


@pytest.fixture(scope="session")
def restate_admin(stack: Stack) -> Restate:
    return Restate(stack.admin_url)
