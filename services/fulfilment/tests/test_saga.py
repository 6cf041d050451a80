"""The OrderFulfilment workflow against a real Restate server and one stub (saga_stub.py) that
answers as every service it calls, under their real names and with their real contracts. For
each branch of the saga: the final status, the reason, and the calls, compensation included,
in the order they must come. Every test runs twice: on a normal server and on one that replays
every step (ids `[normal]`, `[replay]`).

The orders of a mode run side by side (the slowest is a bank that never answers), each driven
by its own thread: started through the ingress, acted on when it reaches a step (a cancel in
the window, the bank's confirmation), followed until it is final, all with deadlines.
"""

import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from shop.dev.eventually import eventually
from shop.dev.restate_harness import MODES, Harness, restate_harness
from shop.shared.catalog import priced_lines
from shop.shared.contracts.fulfilment import CancelReply, FulfilmentResult, Order, OrderStatus
from shop.shared.ownership import sha256

STUB = Path(__file__).with_name("saga_stub.py")
# Long enough for a test to see the window open and cancel in it; every order that is not
# cancelled or failed first waits it out, side by side.
CANCEL_WINDOW_SECONDS = 3
# The bank that never answers: the slowest order of the module.
PAYMENT_AUTH_TIMEOUT_SECONDS = 4
TIMEOUT = 30  # for any one order to reach its final status
LINES = [("tee-logo", 1), ("mug-classic", 2)]  # the workflow takes them by SKU: mug, then tee
MUG, TEE = "Inventory/mug-classic", "Inventory/tee-logo"
RESERVES = [f"{MUG}/reserve 2", f"{TEE}/reserve 1"]
RELEASES = [[f"{TEE}/release"], [f"{MUG}/release"]]  # the reverse of the reservations
AUTHORIZE = ["Payments/authorize 4900 eur"]  # 2 x 12.00 + 25.00 EUR, priced by the workflow


@dataclass
class Scenario:
    script: dict[str, Any] = field(default_factory=dict)  # saga_stub.Script
    lines: list[tuple[str, int]] = field(default_factory=lambda: list(LINES))
    # When the order reaches this step: act (see `act`), or only note the status seen.
    at_step: str | None = None
    act: str | None = None  # "cancel", "bank confirms", "bank refuses"


SCENARIOS = {
    "completed": Scenario(),
    "declined": Scenario(script={"authorize": "declined"}),
    "out_of_stock": Scenario(script={"out_of_stock": ["tee-logo"]}),
    "capture_refused": Scenario(script={"capture": "refused"}),
    "transient": Scenario(
        script={
            "transient": {
                "Payments/authorize": 2,
                "Inventory/reserve": 1,
                "Payments/capture": 2,
                "Email/send": 1,
                "Inventory/commit": 1,
            }
        }
    ),
    "bounce": Scenario(script={"email": "bounce"}),
    "mail_quota_spent": Scenario(script={"authorize": "declined", "mail_quota": False}),
    "bank_timeout": Scenario(
        script={"authorize": "3ds", "check": "requires_action"}, at_step="authenticating"
    ),
    "bank_confirms": Scenario(
        script={"authorize": "3ds", "check": "requires_action"},
        at_step="authenticating",
        act="bank confirms",
    ),
    "bank_refuses": Scenario(
        script={"authorize": "3ds", "check": "requires_action"},
        at_step="authenticating",
        act="bank refuses",
    ),
    "cancel_at_bank": Scenario(
        script={"authorize": "3ds", "check": "requires_action"},
        at_step="authenticating",
        act="cancel",
    ),
    "cancel_in_window": Scenario(at_step="reserved", act="cancel"),
}


@dataclass
class Outcome:
    order_id: str
    result: FulfilmentResult  # what the run returned
    status: OrderStatus  # its final status (get_status)
    seen: OrderStatus | None  # the status at the scenario's step
    calls: list[dict[str, Any]]  # saga_stub.Call, every attempt in order of arrival
    replies: list[CancelReply] = field(default_factory=list)  # to cancels, in order

    def attempts(self, target: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if label(c, with_detail=False) == target]

    def steps(self) -> list[str]:
        """One label per call the workflow made (its last attempt), in order of arrival; the
        order book's entries apart (sent one-way, they arrive when they arrive)."""
        last = {c["invocation_id"]: i for i, c in enumerate(self.calls)}
        made = [c for i, c in enumerate(self.calls) if last[c["invocation_id"]] == i]
        return [label(c) for c in made if c["service"] != "Orders"]

    def booked(self) -> list[str]:
        return [c["detail"] for c in self.calls if c["service"] == "Orders"]


def label(call: dict[str, Any], with_detail: bool = True) -> str:
    """`Payments/capture`, `Inventory/<sku>/reserve 2`, `Email/send failed`... (MailQuota's
    key, a digest of the address, left out)."""
    key = call["key"] if call["service"] == "Inventory" else None
    target = "/".join(p for p in (call["service"], key, call["handler"]) if p)
    return f"{target} {call['detail']}" if with_detail and call["detail"] else target


def in_phases(steps: list[str], *phases: list[str]) -> None:
    """`steps` are the phases one after the other; within a phase (calls the workflow makes
    side by side) in any order."""
    chunks, at = [], 0
    for phase in phases:
        chunks.append(sorted(steps[at : at + len(phase)]))
        at += len(phase)
    assert (chunks, len(steps)) == ([sorted(p) for p in phases], at), steps


class Driver:
    """One order of a scenario, through Restate's ingress."""

    def __init__(self, ingress: httpx.Client, name: str, scenario: Scenario, logs: Path) -> None:
        self.ingress, self.scenario, self.logs = ingress, scenario, logs
        self.order_id = f"saga-{name.replace('_', '-')}-{uuid.uuid4().hex[:12]}"
        self.secret = uuid.uuid4().hex

    def post(self, path: str, body: Any = None) -> Any:
        response = self.ingress.post(path, json=body)
        assert response.is_success, (path, response.status_code, response.text)
        return response.json() if response.content else None

    def script(self, **changes: Any) -> None:
        script = {**self.scenario.script, **changes}
        self.post("/SagaStub/script", {"order_id": self.order_id, "script": script})

    def status(self) -> OrderStatus:
        return OrderStatus.model_validate(self.post(f"/OrderFulfilment/{self.order_id}/get_status"))

    def at(self, step: str) -> OrderStatus:
        def there() -> OrderStatus | None:
            status = self.status()
            return status if status.step == step else None

        return eventually(there, TIMEOUT, 0.05, what=self.ask(step))

    def final(self) -> OrderStatus:
        def final() -> OrderStatus | None:
            status = self.status()
            return status if status.is_final else None

        return eventually(final, TIMEOUT, 0.05, what=self.ask("final"))

    def ask(self, what: str) -> str:
        return f"{self.order_id} {what} (logs: {self.logs})"

    def cancel(self, secret: str) -> CancelReply:
        path = f"/OrderFulfilment/{self.order_id}/cancel_with_secret"
        return CancelReply.model_validate(self.post(path, {"secret": secret}))

    def bank(self, status: str, event: str) -> None:
        """The customer's bank decides (what Stripe then answers), and Stripe's webhook wakes
        the order (as the gateway passes it on)."""
        self.script(check=status)
        body = {"event_id": f"evt_{uuid.uuid4().hex[:12]}", "type": event}
        self.post(f"/OrderFulfilment/{self.order_id}/payment_authenticated", body)

    def run(self) -> Outcome:
        self.script()
        order = Order(
            order_id=self.order_id,
            customer_email=f"{self.order_id}@example.com",
            lines=priced_lines(self.scenario.lines),
            currency="eur",
            payment_method="pm_card_visa",
            secret_digest=sha256(self.secret),
            return_url=f"https://shop.example/orders/{self.order_id}",
        )
        started = self.post(f"/OrderFulfilment/{self.order_id}/run/send", order.model_dump())
        assert started["status"] == "Accepted", started
        seen, replies = None, []
        if self.scenario.at_step:
            seen = self.at(self.scenario.at_step)
        match self.scenario.act:
            case "cancel":
                replies.append(self.cancel("not-the-secret"))
                replies.append(self.cancel(self.secret))
            case "bank confirms":
                self.bank("requires_capture", "payment_intent.amount_capturable_updated")
            case "bank refuses":
                self.bank("requires_payment_method", "payment_intent.payment_failed")
        final = self.final()
        output = self.ingress.get(f"/restate/workflow/OrderFulfilment/{self.order_id}/output")
        assert output.status_code == 200, output.text
        if final.status != "cancelled":  # too late now: the answer says why
            replies.append(self.cancel(self.secret))
        # The book's last entry is sent one-way as the run ends: wait for it too.
        calls = eventually(lambda: self.calls(final), TIMEOUT, 0.05, what=self.ask("booked"))
        return Outcome(
            self.order_id,
            FulfilmentResult.model_validate(output.json()),
            final,
            seen,
            calls,
            replies,
        )

    def calls(self, final: OrderStatus) -> list[dict[str, Any]] | None:
        calls = self.post("/SagaStub/calls", {"order_id": self.order_id})["calls"]
        entry = f"{final.seq} {final.status} {final.step}"
        return calls if any(c["detail"] == entry for c in calls) else None


class Outcomes(dict[str, "Outcome | BaseException"]):
    """Each scenario's outcome; a scenario that broke fails its own tests (with its error),
    not the others'."""

    def __getitem__(self, name: str) -> Outcome:
        outcome = super().__getitem__(name)
        if isinstance(outcome, BaseException):
            raise AssertionError(f"scenario {name} did not run to its end") from outcome
        return outcome

    def all(self) -> dict[str, Outcome]:
        return {name: self[name] for name in self}


def run_all(harness: Harness) -> Outcomes:
    def one(name: str) -> Outcome:
        with httpx.Client(base_url=harness.ingress_url, timeout=TIMEOUT) as ingress:
            return Driver(ingress, name, SCENARIOS[name], harness.logs).run()

    with ThreadPoolExecutor(len(SCENARIOS)) as pool:
        running = {name: pool.submit(one, name) for name in SCENARIOS}
        return Outcomes({name: f.exception() or f.result() for name, f in running.items()})


@pytest.fixture(scope="module", params=sorted(MODES))
def saga(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Outcomes]:
    """Restate (in the mode), the fulfilment service as the stack runs it, the stub; every
    scenario's order run to its end."""
    state = tmp_path_factory.mktemp(f"saga-{request.param}")
    with restate_harness(state, request.param) as harness:
        start(harness)
        yield run_all(harness)


def start(harness: Harness) -> None:
    harness.start_service(
        "fulfilment",
        registers=["OrderFulfilment"],
        env={
            "CANCEL_WINDOW_SECONDS": str(CANCEL_WINDOW_SECONDS),
            "PAYMENT_AUTH_TIMEOUT_SECONDS": str(PAYMENT_AUTH_TIMEOUT_SECONDS),
        },
    )
    stubbed = ["Payments", "Inventory", "Email", "MailQuota", "Orders", "SagaStub"]
    harness.start_service("saga-stub", registers=stubbed, command=[sys.executable, str(STUB)])
    harness.ready()


def test_an_order_completes_without_compensation(saga: Outcomes) -> None:
    o = saga["completed"]
    assert o.result == o.status.result
    assert o.result.status == "completed" and o.result.reason is None
    assert o.result.payment_intent_id == f"pi_stub_{o.order_id}"
    assert o.status.message == "Order complete; confirmation email sent"
    # The stock is committed while the confirmation is mailed: side by side.
    commits = [f"{MUG}/commit", f"{TEE}/commit", "Email/send confirmation"]
    in_phases(o.steps(), AUTHORIZE, RESERVES, ["Payments/capture"], commits)
    assert o.booked() == ["1 running received", f"{o.status.seq} completed completed"]
    # A cancel once the capture is decided is too late, and changes nothing.
    assert [r.outcome for r in o.replies] == ["fulfilling"]


def test_a_declined_card_touches_no_stock_and_tells_the_customer(saga: Outcomes) -> None:
    o = saga["declined"]
    assert o.result.status == "failed"
    assert o.result.reason == "payment declined: Your card was declined."
    assert o.result.last_step == "received"
    # Nothing was held: nothing to undo. The failure mail counts against the address's quota.
    in_phases(o.steps(), AUTHORIZE, ["MailQuota/take allowed"], ["Email/send failed"])
    assert o.attempts("Email/send")[0]["reason"] == o.result.reason
    assert o.status.message == "Order failed; email sent"
    assert o.booked() == ["1 running received", f"{o.status.seq} failed failed"]


def test_out_of_stock_releases_every_line_then_voids_the_hold(saga: Outcomes) -> None:
    o = saga["out_of_stock"]
    assert o.result.status == "failed"
    assert o.result.reason == "out of stock: tee-logo has 0 left, the order needs 1"
    assert o.result.last_step == "authorized"
    # Every line's reservation undone (the refused one's release is a no-op), in reverse,
    # then the hold voided (never a refund: nothing was captured), then the customer told.
    in_phases(
        o.steps(),
        AUTHORIZE,
        RESERVES,
        *RELEASES,
        ["Payments/refund voided"],
        ["MailQuota/take allowed"],
        ["Email/send failed"],
    )
    assert [c["outcome"] for c in o.attempts(f"{TEE}/reserve")] == ["terminal"]


def test_a_refused_capture_gives_back_stock_and_the_hold(saga: Outcomes) -> None:
    o = saga["capture_refused"]
    assert o.result.status == "failed"
    assert o.result.reason is not None and o.result.reason.startswith("capture refused: ")
    assert o.result.last_step == "capturing"
    in_phases(
        o.steps(),
        AUTHORIZE,
        RESERVES,
        ["Payments/capture"],
        *RELEASES,
        ["Payments/refund voided"],
        ["MailQuota/take allowed"],
        ["Email/send failed"],
    )
    assert not any("commit" in step for step in o.steps())


def test_transient_errors_are_retried_until_the_step_succeeds_once(
    saga: Outcomes,
) -> None:
    o = saga["transient"]
    assert o.result.status == "completed", o.result
    commits = [f"{MUG}/commit", f"{TEE}/commit", "Email/send confirmation"]
    in_phases(o.steps(), AUTHORIZE, RESERVES, ["Payments/capture"], commits)
    retried = {
        "Payments/authorize": 2,
        f"{MUG}/reserve": 1,
        f"{TEE}/reserve": 1,
        "Payments/capture": 2,
        "Email/send": 1,
        f"{MUG}/commit": 1,
        f"{TEE}/commit": 1,
    }
    for target, errors in retried.items():
        attempts = o.attempts(target)
        # N errors, then one success; all one call of the workflow's (one invocation),
        # retried by Restate: the journal has its one answer, never a second call.
        assert [a["outcome"] for a in attempts] == ["error"] * errors + ["ok"], target
        assert len({a["invocation_id"] for a in attempts}) == 1, target


def test_a_bounced_confirmation_never_undoes_the_order(saga: Outcomes) -> None:
    o = saga["bounce"]
    assert o.result.status == "completed" and o.result.reason is None
    assert o.status.message == "Order complete; confirmation email could not be sent"
    commits = [f"{MUG}/commit", f"{TEE}/commit", "Email/send confirmation"]
    in_phases(o.steps(), AUTHORIZE, RESERVES, ["Payments/capture"], commits)
    assert [a["outcome"] for a in o.attempts("Email/send")] == ["terminal"]


def test_a_failure_mail_beyond_the_quota_is_not_sent(saga: Outcomes) -> None:
    o = saga["mail_quota_spent"]
    assert o.result.status == "failed"
    assert o.result.reason == "payment declined: Your card was declined."
    in_phases(o.steps(), AUTHORIZE, ["MailQuota/take refused"])
    assert (
        o.status.message == "Order failed; email not sent: this address had enough of them lately"
    )


def test_a_bank_that_never_answers_times_out_and_voids(saga: Outcomes) -> None:
    o = saga["bank_timeout"]
    assert o.seen is not None and o.seen.cancellable
    assert o.seen.action_url == f"https://bank.example/3ds/pi_stub_{o.order_id}"
    assert o.result.status == "failed"
    timeout = f"{PAYMENT_AUTH_TIMEOUT_SECONDS} s"
    assert o.result.reason == f"payment not confirmed with the bank within {timeout}"
    assert o.result.last_step == "authenticating"
    # Stripe is asked once more at the deadline (a late webhook's confirmation still counts).
    in_phases(
        o.steps(),
        AUTHORIZE,
        ["Payments/check requires_action"],
        ["Payments/refund voided"],
        ["MailQuota/take allowed"],
        ["Email/send failed"],
    )
    # The book hears of the wait at the bank (the long-running alert leaves it out).
    seq = o.status.seq
    assert o.booked() == ["1 running received", "2 running authenticating", f"{seq} failed failed"]


def test_a_confirmed_bank_check_goes_on_with_the_same_payment(saga: Outcomes) -> None:
    o = saga["bank_confirms"]
    assert o.result.status == "completed", o.result
    assert o.result.payment_intent_id == f"pi_stub_{o.order_id}"
    commits = [f"{MUG}/commit", f"{TEE}/commit", "Email/send confirmation"]
    check = ["Payments/check requires_capture"]
    in_phases(o.steps(), AUTHORIZE, check, RESERVES, ["Payments/capture"], commits)
    seq = o.status.seq
    assert o.booked() == [
        "1 running received",
        "2 running authenticating",
        "3 running authorized",
        f"{seq} completed completed",
    ]


def test_a_refused_bank_check_voids_and_touches_no_stock(saga: Outcomes) -> None:
    o = saga["bank_refuses"]
    assert o.result.status == "failed"
    assert o.result.reason == "payment authentication failed"
    in_phases(
        o.steps(),
        AUTHORIZE,
        ["Payments/check requires_payment_method"],
        ["Payments/refund voided"],
        ["MailQuota/take allowed"],
        ["Email/send failed"],
    )


def test_a_cancel_at_the_bank_voids_the_hold(saga: Outcomes) -> None:
    o = saga["cancel_at_bank"]
    assert [r.outcome for r in o.replies] == ["refused", "cancelled"]
    assert o.result.status == "cancelled"
    assert o.result.reason == "cancelled by the customer"
    assert o.result.last_step == "authenticating"
    # A cancel is the customer's own doing: no quota is taken for its mail.
    in_phases(o.steps(), AUTHORIZE, ["Payments/refund voided"], ["Email/send cancelled"])


def test_a_cancel_in_the_window_releases_and_voids(saga: Outcomes) -> None:
    o = saga["cancel_in_window"]
    assert o.seen is not None and o.seen.cancellable
    # A wrong secret changes nothing; the order's own cancels it.
    assert [r.outcome for r in o.replies] == ["refused", "cancelled"]
    assert o.result.status == "cancelled"
    assert o.result.reason == "cancelled by the customer"
    assert o.result.last_step == "reserved"
    in_phases(
        o.steps(),
        AUTHORIZE,
        RESERVES,
        *RELEASES,
        ["Payments/refund voided"],
        ["Email/send cancelled"],
    )
    assert o.status.message == "Order cancelled; email sent"


def test_every_step_is_one_call_and_the_book_gets_each_entry_once(saga: Outcomes) -> None:
    """In both modes (replaying every step included), each call the workflow makes reaches
    its service as one invocation, and the book's entries come once each, in order."""
    for name, o in saga.all().items():
        invocations: dict[str, set[str]] = {}
        for call in o.calls:
            invocations.setdefault(label(call), set()).add(call["invocation_id"])
        twice = {target: len(ids) for target, ids in invocations.items() if len(ids) > 1}
        assert not twice, (name, twice)
        seqs = [int(entry.split()[0]) for entry in o.booked()]
        assert seqs == sorted(set(seqs)), (name, o.booked())


def test_a_cancel_after_the_end_is_told_why_it_is_too_late(saga: Outcomes) -> None:
    told = {
        name: (o.status.status, o.replies[-1].outcome)
        for name, o in saga.all().items()
        if o.status.status != "cancelled" and name != "capture_refused"
    }
    expected = {
        name: (status, "fulfilling" if status == "completed" else "failed")
        for name, (status, _) in told.items()
    }
    assert told == expected


def test_a_cancel_after_a_refused_capture_is_told_the_order_failed(
    saga: Outcomes,
) -> None:
    o = saga["capture_refused"]
    assert o.status.status == "failed"
    assert o.replies[-1].outcome == "failed"
