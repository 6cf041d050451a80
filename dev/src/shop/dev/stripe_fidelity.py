"""How faithful is the Stripe emulator? The same payment scenarios, through the official SDK,
against the emulator and against localstripe (an independent fake Stripe), side by side.

    ./task stripe-fidelity            (or: uv run python -m shop.dev.stripe_fidelity)

localstripe is GPL-3: it only ever runs here as a separate process (`uvx --from
localstripe==<pinned> localstripe`), never imported and never a dependency of anything we
ship. The table shows the fields the payments service relies on (status after each step,
the decline's error, the kind of next action, partial refunds, intents listed by `created`
and paged) and marks where the two differ: a difference is a question for Stripe's
documentation, not proof that either one is wrong.
"""

import argparse
import contextlib
import functools
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import stripe
from stripe.params import (
    PaymentIntentListParams,
    PaymentIntentListParamsCreated,
    RefundCreateParams,
)

from shop.dev.stack import free_port

LOCALSTRIPE = "localstripe==1.15.10"
API_KEY = "sk_test_fidelity"
# Stripe's documented test cards behind the test PaymentMethod ids the shop uses: a fake that
# does not know an id gets a PaymentMethod made from the number instead.
TEST_CARDS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_authenticationRequired": "4000002500003155",
}
RETURN_URL = "http://127.0.0.1:8000/orders/fidelity"


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port} after {timeout:.0f}s")


@contextlib.contextmanager
def running(command: list[str], port: int, log: Path) -> Iterator[str]:
    """A fake Stripe as a separate process until the end of the block; its base URL."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_listening(port, process)
            yield f"http://127.0.0.1:{port}"
        except (RuntimeError, TimeoutError) as e:
            raise RuntimeError(f"{' '.join(command)}: {e}\n{log.read_text()[-2000:]}") from e
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def uvx() -> list[str]:
    if found := shutil.which("uvx"):
        return [found]
    if found := shutil.which("uv"):
        return [found, "tool", "run"]
    raise RuntimeError("neither uvx nor uv on PATH: run this through ./task stripe-fidelity")


@dataclass
class Target:
    """One fake Stripe, and what it took to run the shop's calls on it."""

    name: str
    base: str
    authenticate: Callable[["Target", dict[str, Any], bool], None]
    notes: list[str] = field(default_factory=list)
    methods: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(
            API_KEY, base_addresses={"api": self.base}, max_network_retries=0
        )

    def raw(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = httpx.request(
            method,
            f"{self.base}{path}",
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=10,
            **kwargs,
        )
        response.raise_for_status()
        return response.json()

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def method(self, test_id: str) -> str:
        """The test PaymentMethod id, or one made from its card number where it is unknown."""
        return self.methods.get(test_id, test_id)

    def create_intent(self, test_id: str, **extra: Any) -> stripe.PaymentIntent:
        """As the payments service authorizes (shop.payments.handlers.stripe_authorize). A
        parameter the fake refuses ('Unexpected x') is dropped and noted; an unknown test
        PaymentMethod id is replaced by a card with its number."""
        params: dict[str, Any] = {
            "amount": 1250,
            "currency": "eur",
            "payment_method": self.method(test_id),
            "allowed_payment_method_types": ["card"],
            "capture_method": "manual",
            "confirm": True,
            "metadata": {"order_id": f"ord_{uuid.uuid4().hex[:8]}"},
            "description": "shop order fidelity",
            **extra,
        }
        key = uuid.uuid4().hex
        for _ in range(5):
            try:
                # params loses, by name, what the fake refuses: a plain dict, not the SDK's
                # TypedDict (whose keys must be literals).
                return self.client.v1.payment_intents.create(
                    params=params,  # type: ignore[arg-type]
                    options={"idempotency_key": key},
                )
            except stripe.InvalidRequestError as e:
                message = str(e.user_message or e)
                if unexpected := re.findall(r"Unexpected (.+)", message):
                    for name in unexpected[0].split(", "):
                        params.pop(name.strip(), None)
                        self.note(f"refuses the param {name.strip()} (dropped)")
                elif e.http_status == 404 and test_id in TEST_CARDS and test_id not in self.methods:
                    self.methods[test_id] = self.card(test_id)
                    params["payment_method"] = self.methods[test_id]
                    self.note(f"does not know {test_id} (used a card {TEST_CARDS[test_id]})")
                else:
                    raise
                key = uuid.uuid4().hex
        raise RuntimeError("too many refused parameters")

    def card(self, test_id: str) -> str:
        made = self.raw(
            "POST",
            "/v1/payment_methods",
            data={
                "type": "card",
                "card[number]": TEST_CARDS[test_id],
                "card[exp_month]": "12",
                "card[exp_year]": "2034",
                "card[cvc]": "123",
            },
        )
        return str(made["id"])


def emulator_authenticate(target: Target, intent: dict[str, Any], success: bool) -> None:
    outcome = "complete" if success else "fail"
    httpx.post(
        f"{target.base}/_emulator/3ds/{intent['id']}", json={"outcome": outcome}
    ).raise_for_status()


def localstripe_authenticate(target: Target, intent: dict[str, Any], success: bool) -> None:
    """localstripe's own stand-in for the customer's 3-D Secure answer (what its Stripe.js
    does): POST /v1/payment_intents/{id}/_authenticate with the client secret."""
    target.raw(
        "POST",
        f"/v1/payment_intents/{intent['id']}/_authenticate",
        data={"client_secret": intent["client_secret"], "success": str(success).lower()},
    )


def pick(answer: Any, name: str) -> Any:
    """A field of an answer (an error's text stays as it is)."""
    if isinstance(answer, stripe.StripeObject):
        return answer.to_dict().get(name, "(no such field)")
    return answer


def outcome(call: Callable[[], Any]) -> Any:
    """What a call answers, or its Stripe error as `<http status> <code>`."""
    try:
        return call()
    except stripe.StripeError as e:
        return f"error {e.http_status} {e.code}"


def scenarios(t: Target) -> dict[str, Any]:
    """Each check the payments service relies on -> what this fake answers."""
    pis = t.client.v1.payment_intents
    out: dict[str, Any] = {}

    held = t.create_intent("pm_card_visa")
    out["visa, manual capture: status after create"] = held.status
    captured = outcome(lambda: pis.capture(held.id))
    out["visa: status after capture"] = pick(captured, "status")
    out["visa: amount_received after capture"] = pick(captured, "amount_received")
    refund = outcome(lambda: t.client.v1.refunds.create(params={"payment_intent": held.id}))
    out["refund of a captured intent: status"] = pick(refund, "status")

    voided = t.create_intent("pm_card_visa")
    out["cancel (void) of requires_capture: status"] = outcome(lambda: pis.cancel(voided.id).status)

    for card in ("pm_card_chargeDeclined", "pm_card_chargeCustomerFail"):
        declined = outcome(functools.partial(t.create_intent, card))
        if isinstance(declined, stripe.PaymentIntent):
            declined = f"no error, status {declined.status}"
        out[f"{card}: error of create"] = declined

    same_key = uuid.uuid4().hex
    ids = [
        pis.create(
            params={
                "amount": 500,
                "currency": "eur",
                "payment_method": t.method("pm_card_visa"),
                "capture_method": "manual",
                "confirm": True,
            },
            options={"idempotency_key": same_key},
        ).id
        for _ in range(2)
    ]
    out["same Idempotency-Key twice: same intent"] = ids[0] == ids[1]

    for card in ("pm_card_threeDSecure2Required", "pm_card_authenticationRequired"):
        pending = outcome(functools.partial(t.create_intent, card, return_url=RETURN_URL))
        if not isinstance(pending, stripe.PaymentIntent):
            out[f"{card}: status after create"] = pending
            continue
        action = pending.to_dict().get("next_action") or {}
        out[f"{card}: status after create"] = pending.status
        out[f"{card}: next_action.type"] = action.get("type")
    pending = t.create_intent("pm_card_threeDSecure2Required", return_url=RETURN_URL)
    out["3DS: capture while requires_action"] = outcome(lambda: pis.capture(pending.id).status)
    t.authenticate(t, pending.to_dict(), True)
    out["3DS completed: status"] = pis.retrieve(pending.id).status
    out["3DS completed, captured: status"] = outcome(lambda: pis.capture(pending.id).status)

    failing = t.create_intent("pm_card_threeDSecure2Required", return_url=RETURN_URL)
    t.authenticate(t, failing.to_dict(), False)
    failed = pis.retrieve(failing.id)
    out["3DS failed: status"] = failed.status
    error = failed.to_dict().get("last_payment_error") or {}
    out["3DS failed: last_payment_error.code"] = error.get("code")
    out["3DS failed: last_payment_error.type"] = error.get("type")
    out["3DS failed: cancel (void): status"] = outcome(lambda: pis.cancel(failing.id).status)

    waiting = t.create_intent("pm_card_threeDSecure2Required", return_url=RETURN_URL)
    out["cancel (void) of requires_action: status"] = outcome(lambda: pis.cancel(waiting.id).status)
    return out | refund_scenarios(t) | window_scenarios(t)


def captured(t: Target) -> str:
    """A completed order's intent (1250, captured)."""
    intent = t.create_intent("pm_card_visa")
    t.client.v1.payment_intents.capture(intent.id)
    return intent.id


def refund_scenarios(t: Target) -> dict[str, Any]:
    """Refunds of a completed order: partial ones, until nothing is left, then listed."""
    refunds = t.client.v1.refunds
    intent_id = captured(t)
    out: dict[str, Any] = {}

    def partial(amount: int) -> Any:
        return outcome(
            lambda: refunds.create(params={"payment_intent": intent_id, "amount": amount})
        )

    first = partial(400)
    out["partial refund, 400 of 1250: status"] = pick(first, "status")
    out["partial refund, 400 of 1250: amount"] = pick(first, "amount")
    second = partial(500)
    out["second partial refund, 500: status"] = pick(second, "status")
    out["second partial refund, 500: amount"] = pick(second, "amount")
    beyond = partial(500)  # 350 left
    if isinstance(beyond, stripe.Refund):
        beyond = f"no error, amount {beyond.amount}"
    out["refund of 500 with 350 left: error"] = beyond
    listed = outcome(lambda: refunds.list(params={"payment_intent": intent_id}))
    if isinstance(listed, str):
        out["refunds listed by payment_intent: amounts"] = listed
    else:
        out["refunds listed by payment_intent: amounts"] = [r.amount for r in listed.data]
    # Apart, on an intent of its own: a fake that refuses `reason` spoils no other row.
    other = captured(t)
    params: RefundCreateParams = {
        "payment_intent": other,
        "amount": 100,
        "reason": "requested_by_customer",
    }
    with_reason = outcome(lambda: refunds.create(params=params))
    out["refund with reason requested_by_customer: reason"] = pick(with_reason, "reason")
    return out


def window_scenarios(t: Target) -> dict[str, Any]:
    """The daily reconciliation: the intents made in a window of `created`, paged."""
    pis = t.client.v1.payment_intents
    made = [t.create_intent("pm_card_visa") for _ in range(3)]
    ids = {i.id for i in made}
    first, last = min(i.created for i in made), max(i.created for i in made)
    window: PaymentIntentListParamsCreated = {"gte": first, "lt": last + 1}

    def found(created: PaymentIntentListParamsCreated) -> Any:
        """How many of the three a window holds (other intents of the run may be in it too)."""
        answer = outcome(lambda: pis.list(params={"created": created, "limit": 100}))
        if isinstance(answer, str):
            return answer
        return f"{sum(i.id in ids for i in answer.data)} of 3"

    out: dict[str, Any] = {
        "intents listed with created[gte]=first, [lt]=last+1": found(window),
        "intents listed with created[lt]=first": found({"lt": first}),
        "intents listed with created[gte]=last+1": found({"gte": last + 1}),
    }
    # Paging alone (every intent of the run), then within the window as the reconciliation.
    out["all intents, pages of 2 by starting_after"] = outcome(lambda: walk(pis, {}, ids))
    out["intents in the window, pages of 2 by starting_after"] = outcome(
        lambda: walk(pis, {"created": window}, ids)
    )
    return out


def walk(pis: stripe.PaymentIntentService, query: PaymentIntentListParams, ids: set[str]) -> str:
    """Every page of a list, each after the last one's last intent: how many of `ids` came
    back, and how many intents came more than once."""
    seen: list[str] = []
    params: PaymentIntentListParams = {**query, "limit": 2}
    for _ in range(100):  # a fake that ignores starting_after would page forever
        page = pis.list(params=params)
        seen += [i.id for i in page.data]
        if not page.has_more or not page.data:
            break
        params["starting_after"] = page.data[-1].id
    return f"{len(ids & set(seen))} of 3, {len(seen) - len(set(seen))} repeated"


def table(left: Target, right: Target, a: dict[str, Any], b: dict[str, Any]) -> str:
    rows = [("check", left.name, right.name, "")]
    for check in a.keys() | b.keys():
        x, y = a.get(check, "-"), b.get(check, "-")
        rows.append((check, str(x), str(y), "" if x == y else "DIFFERS"))
    order = list(a) + [k for k in b if k not in a]
    rows[1:] = sorted(rows[1:], key=lambda r: order.index(r[0]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--localstripe", default=LOCALSTRIPE, help="pip requirement to run")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="stripe-fidelity-"))
    emulator_port, localstripe_port = free_port(), free_port()
    emulator_cmd = [sys.executable, "-m", "shop.dev.stripe_emulator", "--port", str(emulator_port)]
    localstripe_cmd = [
        *uvx(),
        "--from",
        args.localstripe,
        "localstripe",
        "--port",
        str(localstripe_port),
        "--from-scratch",
    ]
    with (
        running(emulator_cmd, emulator_port, logs / "emulator.log") as emulator_url,
        running(localstripe_cmd, localstripe_port, logs / "localstripe.log") as localstripe_url,
    ):
        emulator = Target("emulator", emulator_url, emulator_authenticate)
        localstripe = Target(args.localstripe, localstripe_url, localstripe_authenticate)
        results = [scenarios(emulator), scenarios(localstripe)]
    print(table(emulator, localstripe, *results))
    for target in (emulator, localstripe):
        for note in target.notes:
            print(f"note: {target.name} {note}")
    differences = sum(results[0].get(k) != results[1].get(k) for k in results[0])
    print(f"\n{differences} difference(s); logs in {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
