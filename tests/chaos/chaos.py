"""Chaos: orders of every kind from several clients while SIGKILL hits a random component
every few seconds; then every accepted order must reach a final state and the invariants must
hold, read only through public interfaces (the gateway's API, the Stripe API through the
official SDK, the Maildir).

    ./task chaos -- --seconds 300        # prints a report; exits 1 on any violation

A short run is part of `./task test` (tests/chaos/test_chaos.py), through `run_on_new_stack`.

The clients behave as a careful client must during an outage: every POST carries an
Idempotency-Key and is retried with that key (and the same body) on 503/429 (after
Retry-After) and on connection errors, so a retried order is never a second one. Kinds:

- normal: must complete;
- declined (`pm_card_chargeDeclined`): must fail, nothing charged, no stock taken;
- out_of_stock: more posters than are stocked (sometimes beside a line in stock): must fail;
- duplicate: one key, one body, sent twice (racing or one after the other): both answers
  name one order, which completes, and its customer gets one mail;
- cancelled: cancelled with its secret shortly after the answer: a 200/202 must end
  cancelled, a 409 (too late) completed.

SIGKILL goes to a random program of the stack's supervisord (each service, the gateway, every
Restate node, Valkey), drawn from a shuffled bag so each is hit once before any twice; the
supervisor restarts it. The Stripe emulator and the SMTP sink are the outside world and stay.
"""

import argparse
import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx
import stripe

from shop.dev.stack import NO_CLIENT_LIMITS, SERVICES, Ports, Stack

from ..invariants import (
    FINAL,
    SUBJECT_WORD,
    Mail,
    book_agrees,
    booked,
    money_kept,
    stripe_client,
)

KINDS = {"normal": 35, "declined": 15, "out_of_stock": 15, "duplicate": 15, "cancelled": 20}
PLENTY = ("mug-classic", "tee-logo", "cap-navy", "sticker-pack")
PLENTY_STOCK = 100_000
SCARCE, SCARCE_STOCK = "poster-a2", 5  # only out-of-stock orders ask for it, always for more
DECLINED_CARD = "pm_card_chargeDeclined"
CANCEL_WINDOW_SECONDS = 1
NO_ANSWER = "no answer within the client's patience"
# Outage answers a client waits out and retries (the same request, the same key).
RETRY = {429, 502, 503, 504}
UNEXPECTED_5XX = {500, 502, 504}


def killable(programs: list[str]) -> list[str]:
    """What the chaos may kill: the shop's own processes, every Restate node, Valkey, the
    order book's PostgreSQL."""
    ours = {*SERVICES, "gateway", "valkey", "postgres"}
    return [p for p in programs if p in ours or p == "restate" or p.startswith("restate-")]


def listening(pid: int) -> bool:
    """Whether the process has a TCP socket in LISTEN state (from /proc)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
        links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds}
    except OSError:
        return False
    sockets = {link[8:-1] for link in links if link.startswith("socket:[")}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                columns = line.split()
                if columns[3] == "0A" and columns[9] in sockets:  # 0A: LISTEN
                    return True
    return False


@dataclass
class Order:
    kind: str
    email: str
    body: dict[str, Any]
    key: str
    # Every answer (order id, secret) to a POST of it: one per send (two for a duplicate).
    # A replay under the key answers without the secret (None): only the first got it.
    answers: list[tuple[str, str | None]] = field(default_factory=list)
    refused: str | None = None  # a definitive answer other than 202, or none at all
    late: bool = False  # its POST went unanswered during the chaos: sent again after it
    cancel: str | None = None  # cancelled | cancelling | too late | no secret | unanswered
    final: str | None = None

    @property
    def order_id(self) -> str | None:
        return self.answers[0][0] if self.answers else None

    @property
    def accepted(self) -> bool:
        return bool(self.answers) and self.refused is None

    def expected(self) -> set[str]:
        if self.kind in ("declined", "out_of_stock"):
            return {"failed"}
        if self.kind == "cancelled":
            return {
                "cancelled": {"cancelled"},
                "cancelling": {"cancelled"},
                "too late": {"completed"},
                "no secret": {"completed"},
            }.get(self.cancel or "", {"cancelled", "completed"})
        return {"completed"}

    def quantities(self) -> Counter[str]:
        wanted: Counter[str] = Counter()
        for item in self.body["items"]:
            wanted[item["product_id"]] += item["quantity"]
        return wanted


@dataclass
class Report:
    seconds: float
    clients: int
    programs: list[str]
    seed: int = 0
    orders: list[Order] = field(default_factory=list)
    kills: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)  # outage answers clients waited out
    deferred: int = 0  # kill turns passed because nothing was back up yet
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def render(self) -> str:
        outcomes = ["completed", "failed", "cancelled", "not final", "refused"]
        rows = [["kind", "placed", *outcomes]]
        by_kind: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
        for o in self.orders:
            outcome = "refused" if not o.accepted else o.final or "not final"
            by_kind[o.kind][outcome] += 1
        total: Counter[str] = Counter()
        for kind, counts in by_kind.items():
            total.update(counts)
            rows.append([kind, str(counts.total()), *(str(counts[c]) for c in outcomes)])
        rows.append(["all", str(total.total()), *(str(total[c]) for c in outcomes)])
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        table = [
            "  "
            + "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
            for row in rows
        ]
        cancels = Counter(o.cancel for o in self.orders if o.kind == "cancelled" and o.accepted)
        duplicates = [o for o in self.orders if o.kind == "duplicate" and o.accepted]
        raced = sum(1 for o in duplicates if len(o.answers) == 2)
        lines = [
            f"chaos: {self.seconds:g} s of orders from {self.clients} clients under SIGKILL"
            f" (seed {self.seed})",
            "",
            "orders by kind and final state:",
            *table,
            f"  cancel answers: {dict(sorted(cancels.items(), key=str)) or '-'}",
            f"  duplicates: {raced} sent twice, each answered with one order",
            "  sent again after the chaos, their POST having outlasted the client's patience"
            f" (120 s): {sum(o.late for o in self.orders)}",
            "",
            f"kills by component ({self.kills.total()}):",
            *(f"  {name:<12} {self.kills[name]}" for name in self.programs),
            f"  (turns passed while every program was still restarting: {self.deferred})",
            "",
            "outage answers the clients waited out and retried:",
            *(f"  {what:<28} {n}" for what, n in sorted(self.answers.items())),
            "",
            "timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.timings.items()),
            *(f"note: {n}" for n in self.notes),
            "",
            f"violations ({len(self.violations)}):",
            *(f"  - {v}" for v in self.violations[:200]),
        ]
        if len(self.violations) > 200:
            lines.append(f"  ... and {len(self.violations) - 200} more")
        if not self.violations:
            lines.append("  none")
        return "\n".join(lines)


class Chaos:
    def __init__(
        self,
        stack: Stack,
        seconds: float,
        clients: int = 4,
        kill_every: tuple[float, float] = (2.0, 5.0),
        settle: float = 180,
        seed: int | None = None,
        log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    ) -> None:
        self.stack, self.seconds, self.clients = stack, seconds, clients
        self.kill_every, self.settle, self.log = kill_every, settle, log
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        self.lock = threading.Lock()
        self.admin = {"Authorization": f"Bearer {stack.shared_env()['ADMIN_TOKEN']}"}
        self.report = Report(seconds, clients, killable(list(stack.programs())), self.seed)
        self.started = self.stop_at = 0.0

    # ---- HTTP with the patience of a careful client -------------------------------------

    def note(self, what: str) -> None:
        with self.lock:
            self.report.answers[what] += 1

    def violation(self, what: str) -> None:
        with self.lock:
            self.report.violations.append(what)

    def request(
        self,
        http: httpx.Client,
        method: str,
        path: str,
        patience: float = 120,
        retry_404: float = 0,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """The answer, after waiting out outages (503/429 after Retry-After, connection
        errors, and 404 for `retry_404` seconds); None if the outage outlasts `patience`."""
        start = time.monotonic()
        while True:
            try:
                response = http.request(method, path, **kwargs)
            except httpx.TransportError as e:
                self.note(f"{method} connection error ({type(e).__name__})")
                wait = 0.5
            else:
                code = response.status_code
                if code in UNEXPECTED_5XX:
                    self.violation(f"{method} {path} answered {code}: {response.text[:200]}")
                if code == 404 and time.monotonic() - start < retry_404:
                    self.note(f"{method} 404 (not yet visible)")
                    wait = 0.2
                elif code not in RETRY:
                    return response
                else:
                    self.note(f"{method} {code}")
                    wait = float(response.headers.get("Retry-After", 1))
            if time.monotonic() - start + wait > patience:
                return None
            time.sleep(wait * random.uniform(0.5, 1.5))

    # ---- the clients ---------------------------------------------------------------------

    def new_order(self, rng: random.Random) -> Order:
        kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
        lines = [
            {"product_id": sku, "quantity": rng.randint(1, 3)}
            for sku in rng.sample(PLENTY, rng.randint(1, 2))
        ]
        body: dict[str, Any] = {"items": lines}
        if kind == "declined":
            body["payment_method"] = DECLINED_CARD
        elif kind == "out_of_stock":
            scarce = {"product_id": SCARCE, "quantity": rng.randint(SCARCE_STOCK + 1, 20)}
            body["items"] = [scarce, *lines[:1]] if rng.random() < 0.5 else [scarce]
        email = f"chaos-{kind.replace('_', '-')}-{uuid.uuid4().hex[:10]}@example.com"
        body["customer_email"] = email
        return Order(kind=kind, email=email, body=body, key=f"chaos-{uuid.uuid4()}")

    def send(self, http: httpx.Client, order: Order, patience: float = 120) -> None:
        """POST the order under its key until there is an answer that is not an outage."""
        headers = {"Idempotency-Key": order.key}
        response = self.request(
            http, "POST", "/api/orders", patience, json=order.body, headers=headers
        )
        with self.lock:
            if response is None:
                order.refused = NO_ANSWER
            elif response.status_code != 202:
                order.refused = f"{response.status_code} {response.text[:200]}"
            else:
                body = response.json()
                order.answers.append((body["order_id"], body.get("order_secret")))

    def cancel(self, http: httpx.Client, order: Order, rng: random.Random) -> None:
        time.sleep(rng.uniform(0, 1.5 * CANCEL_WINDOW_SECONDS))  # in the window, or too late
        order_id, secret = order.answers[0]
        if secret is None:  # its first answer was lost: the replay carries no secret
            order.cancel = "no secret"
            return
        response = self.request(
            http,
            "POST",
            f"/api/orders/{order_id}/cancel",
            retry_404=15,
            headers={"Order-Secret": secret},
        )
        if response is None:
            order.cancel = "unanswered"
        elif response.status_code == 200:
            order.cancel = "cancelled"
        elif response.status_code == 202:
            order.cancel = "cancelling"
        elif response.status_code == 409:
            order.cancel = "too late"
        else:
            order.cancel = "unanswered"
            self.violation(f"cancel of {order_id} answered {response.status_code}: {response.text}")

    def client(self, n: int) -> None:
        rng = random.Random(self.seed * 1000 + n)
        with httpx.Client(
            base_url=self.stack.gateway_url, timeout=httpx.Timeout(20, connect=3)
        ) as http:
            while time.monotonic() < self.stop_at:
                order = self.new_order(rng)
                with self.lock:
                    self.report.orders.append(order)
                if order.kind == "duplicate":
                    other = threading.Thread(target=self.send_copy, args=(order, rng.random()))
                    other.start()
                    self.send(http, order)
                    other.join()
                    self.check_duplicate(order)
                else:
                    self.send(http, order)
                if order.kind == "cancelled" and order.accepted:
                    self.cancel(http, order, rng)
                time.sleep(rng.uniform(0, 0.4))

    def send_copy(self, order: Order, delay: float) -> None:
        """The same request again: racing the first (no delay) or after it."""
        time.sleep(delay * 0.5)
        with httpx.Client(base_url=self.stack.gateway_url, timeout=20) as http:
            self.send(http, order)

    def check_duplicate(self, order: Order) -> None:
        if order.accepted and len({order_id for order_id, _ in order.answers}) != 1:
            self.violation(f"one Idempotency-Key, one body, two orders: {order.answers}")

    # ---- the killer ----------------------------------------------------------------------

    def up(self, program: str) -> int | None:
        """The program's pid once it is back in service (listening on a TCP port): a process
        still starting after its last kill is not killed again (on a busy machine a Python
        service may take longer to start than a round of kills)."""
        out = self.stack.ctl("pid", program).strip()
        pid = int(out) if out.isdigit() and out != "0" else None
        return pid if pid is not None and listening(pid) else None

    def killer(self) -> None:
        rng = random.Random(self.seed)
        bag: list[str] = []
        next_kill = time.monotonic() + rng.uniform(*self.kill_every)
        while next_kill < self.stop_at:
            time.sleep(max(0.0, next_kill - time.monotonic()))
            next_kill += rng.uniform(*self.kill_every)
            if not bag:
                bag = rng.sample(self.report.programs, len(self.report.programs))
            # The next program of the bag that is up; those still starting keep their turn.
            for program in reversed(bag):
                pid = self.up(program)
                if time.monotonic() >= self.stop_at:
                    break
                if pid is None:
                    continue
                bag.remove(program)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    with self.lock:
                        self.report.kills[program] += 1
                    self.log(f"chaos +{time.monotonic() - self.started:5.1f}s SIGKILL {program}")
                break
            else:
                with self.lock:
                    self.report.deferred += 1

    # ---- the run -------------------------------------------------------------------------

    def setup(self, http: httpx.Client) -> dict[str, dict[str, Any]]:
        """Stock every SKU for the run; the catalog as it is before the first order."""
        for sku in (*PLENTY, SCARCE):
            quantity = SCARCE_STOCK if sku == SCARCE else PLENTY_STOCK
            response = self.request(
                http,
                "PUT",
                f"/api/admin/products/{sku}/stock",
                json={"quantity": quantity},
                headers=self.admin,
            )
            assert response is not None and response.status_code == 200, response
        return self.products(http)

    def products(self, http: httpx.Client) -> dict[str, dict[str, Any]]:
        response = self.request(http, "GET", "/api/products")
        assert response is not None and response.status_code == 200, response
        return {p["product_id"]: p for p in response.json()}

    def run(self) -> Report:
        report = self.report
        self.log(
            f"chaos: {self.seconds:g} s, {self.clients} clients, a SIGKILL every "
            f"{self.kill_every[0]:g}-{self.kill_every[1]:g} s among {report.programs}, "
            f"seed {self.seed}"
        )
        with httpx.Client(base_url=self.stack.gateway_url, timeout=20) as http:
            before = self.setup(http)
            self.started = time.monotonic()
            self.stop_at = self.started + self.seconds
            threads = [threading.Thread(target=self.killer)] + [
                threading.Thread(target=self.client, args=(n,)) for n in range(self.clients)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            report.timings["chaos and answers"] = time.monotonic() - self.started
            mark = time.monotonic()
            self.stack.wait_ready(timeout=120)
            self.send_unanswered_again(http)
            self.wait_final(http)
            report.timings["every order final"] = time.monotonic() - mark
            mark = time.monotonic()
            self.check(http, before)
            report.timings["checks"] = time.monotonic() - mark
        return report

    def send_unanswered_again(self, http: httpx.Client) -> None:
        """What a client does about an order whose POST outlasted its patience: the same
        request under the same key once the shop is back, which names the order if the
        first attempt started one, and starts it otherwise."""
        for order in self.report.orders:
            if order.refused == NO_ANSWER:
                order.refused, order.late = None, True
                self.send(http, order, patience=60)
                if order.kind == "duplicate":
                    self.check_duplicate(order)

    def wait_final(self, http: httpx.Client) -> None:
        """Every accepted order's final state, within `settle` seconds."""
        deadline = time.monotonic() + self.settle
        pending = {o.order_id: o for o in self.report.orders if o.accepted}

        def poll(order: Order) -> None:
            response = self.request(http, "GET", f"/api/orders/{order.order_id}", patience=30)
            if response is not None and response.status_code == 200:
                status = response.json()["status"]
                if status in FINAL:
                    order.final = status
            elif response is not None:
                self.note(f"GET status {response.status_code}")

        with ThreadPoolExecutor(4) as pool:
            while pending and time.monotonic() < deadline:
                list(pool.map(poll, pending.values()))
                pending = {i: o for i, o in pending.items() if o.final is None}
                if pending:
                    time.sleep(1)

    def check(self, http: httpx.Client, before: dict[str, dict[str, Any]]) -> None:
        accepted = [o for o in self.report.orders if o.accepted]
        for o in self.report.orders:
            if not o.accepted:
                self.violation(f"{o.kind} order never accepted: {o.refused}")
            elif o.final is None:
                self.violation(f"{o.kind} order {o.order_id} not final after {self.settle:g} s")
            elif o.final not in o.expected():
                self.violation(
                    f"{o.kind} order {o.order_id} ended {o.final}, expected "
                    f"{' or '.join(sorted(o.expected()))} (cancel: {o.cancel})"
                )
        self.check_money(accepted, before)
        self.check_mail(accepted)
        self.check_stock(accepted, before, self.products(http))
        self.check_book(http, accepted, before)

    def check_book(
        self, http: httpx.Client, accepted: list[Order], before: dict[str, dict[str, Any]]
    ) -> None:
        """The order book holds every accepted order once, with its final status and total
        (once its writes, retried through the kills, are in: within `settle` seconds), and
        no order no client was told of."""
        admin = {"Authorization": f"Bearer {self.stack.shared_env()['ADMIN_TOKEN']}"}
        deadline = time.monotonic() + self.settle

        def check(order: Order) -> None:
            order_id = order.order_id  # (one of an order with a final state)
            if order.final is None or order_id is None:
                return
            record = None
            while time.monotonic() < deadline:
                record = booked(http, admin, order_id)
                if record is not None and record["status"] == order.final:
                    break
                time.sleep(1)
            total = sum(before[s]["price_cents"] * q for s, q in order.quantities().items())
            if record is None or record["status"] != order.final:
                found = record and record["status"]
                self.violation(f"book: {order.order_id} is {found}, the order {order.final}")
                return
            try:
                book_agrees(record, order.final, total)
            except AssertionError as e:
                self.violation(f"book: {order.order_id}: {e}")

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(check, accepted))
        export = http.get("/api/admin/orders.csv", headers=admin, timeout=60)
        booked_ids = [row.split(",", 1)[0] for row in export.text.splitlines()[1:]]
        if len(booked_ids) != len(set(booked_ids)):
            self.violation("book: an order listed twice")
        for order_id in sorted(set(booked_ids) - {o.order_id for o in accepted}):
            self.violation(f"book: {order_id}, an order no client was told of")

    def check_money(self, accepted: list[Order], before: dict[str, dict[str, Any]]) -> None:
        """Per order through the Stripe API: the total kept if completed, else nothing; no
        hold left; and no PaymentIntent for an order no client was told of."""
        api = stripe_client(self.stack.stripe_url)

        def check(order: Order) -> None:
            order_id = order.order_id  # (one of an order with a final state)
            if order.final is None or order_id is None:
                return
            kept, held = money_kept(api, order_id)
            total = sum(before[s]["price_cents"] * q for s, q in order.quantities().items())
            expected = total if order.final == "completed" else 0
            if kept != expected or held:
                self.violation(
                    f"money for {order.kind} order {order.order_id} ({order.final}): kept "
                    f"{kept} cents, expected {expected}{', a hold is left' if held else ''}"
                )

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(check, accepted))
        known = {o.order_id for o in accepted}
        intents, complete = all_payment_intents(api)
        for intent in intents:
            order_id = intent.metadata.to_dict().get("order_id")
            if order_id not in known:
                self.violation(f"PaymentIntent {intent.id} ({intent.status}) for {order_id}")
        if not complete:
            self.report.notes.append(
                "the Stripe emulator ignores starting_after: only the first page of "
                "PaymentIntents was checked for orders no client was told of"
            )

    def check_mail(self, accepted: list[Order]) -> None:
        """Each customer (one per order) got exactly one mail, about their order, with the
        word of its outcome; nobody else got any."""
        inboxes = Mail(self.stack.maildir).inboxes()
        ours = {o.email for o in self.report.orders}
        for address in sorted(set(inboxes) - ours):
            self.violation(f"mail to an address no client used: {address}")
        for order in accepted:
            inbox = inboxes.get(order.email, {})
            subjects = [m["Subject"] or "" for m in inbox.values()]
            if order.final is None:
                continue
            word = SUBJECT_WORD[order.final]
            if len(subjects) != 1 or order.order_id not in subjects[0] or word not in subjects[0]:
                self.violation(
                    f"mail for {order.kind} order {order.order_id} ({order.final}): {subjects}"
                )
        for order in self.report.orders:
            if not order.accepted and order.email in inboxes:
                self.violation(f"mail for a refused order: {order.email}")

    def check_stock(
        self,
        accepted: list[Order],
        before: dict[str, dict[str, Any]],
        after: dict[str, dict[str, Any]],
    ) -> None:
        """Nothing left reserved, stocked = available + sold, and exactly what completed
        orders bought is sold."""
        bought: Counter[str] = Counter()
        for order in accepted:
            if order.final == "completed":
                bought.update(order.quantities())
        for sku, now in after.items():
            sold = now["sold"] - before[sku]["sold"]
            if now["reserved"] != 0 or now["stocked"] != now["available"] + now["sold"]:
                self.violation(f"stock of {sku} not conserved: {now}")
            if sold != bought[sku] or now["available"] != before[sku]["available"] - sold:
                self.violation(
                    f"stock of {sku}: sold {sold} during the run, completed orders bought "
                    f"{bought[sku]}; available {before[sku]['available']} -> {now['available']}"
                )


def all_payment_intents(api: stripe.StripeClient) -> tuple[list[Any], bool]:
    """Every PaymentIntent, through the SDK's auto-pagination; (first page, False) when the
    API ignores `starting_after` and would hand the same page back forever."""
    seen: dict[str, Any] = {}
    first = api.v1.payment_intents.list(params={"limit": 100})
    for intent in first.auto_paging_iter():
        if intent.id in seen:
            return list(seen.values()), False
        seen[intent.id] = intent
    return list(seen.values()), True


def new_stack(state: Path, cluster: int = 1) -> Stack:
    """A stack of its own for the run: free ports, a short cancellation window, a low bound
    on orders in flight so that shedding (429) is part of what the clients see."""
    options: dict[str, Any] = {}
    if cluster > 1:
        if "cluster" not in {f.name for f in fields(Stack)}:
            raise SystemExit("this stack has no Restate cluster option (Stack(cluster=...))")
        options["cluster"] = cluster
    return Stack(
        state=state,
        ports=Ports.free(),
        service_env={
            "CANCEL_WINDOW_SECONDS": str(CANCEL_WINDOW_SECONDS),
            "MAX_ORDERS_IN_FLIGHT": "30",
            **NO_CLIENT_LIMITS,
        },
        **options,
    )


@contextlib.contextmanager
def stack_in(state: Path, cluster: int = 1) -> Iterator[Stack]:
    stack = new_stack(state, cluster)
    with stack.running(timeout=120):
        yield stack


def run_on_new_stack(state: Path, seconds: float, cluster: int = 1, **options: Any) -> Report:
    """The whole chaos run on a stack started for it in `state` (stopped afterwards)."""
    started = time.monotonic()
    with stack_in(state, cluster) as stack:
        up = time.monotonic() - started
        report = Chaos(stack, seconds, **options).run()
        stopping = time.monotonic()
    report.timings["stack start"] = up
    report.timings["stack stop"] = time.monotonic() - stopping
    report.timings["in all"] = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=120, help="how long orders and kills go on"
    )
    parser.add_argument("--clients", type=int, default=4, help="client threads placing orders")
    parser.add_argument(
        "--kill-every",
        type=float,
        nargs=2,
        default=(2.0, 5.0),
        metavar=("MIN", "MAX"),
        help="seconds between two kills, drawn uniformly",
    )
    parser.add_argument("--settle", type=float, default=180, help="wait for final states, at most")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--cluster", type=int, default=1, help="Restate nodes (if supported)")
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder")
    args = parser.parse_args(argv)
    state = Path(tempfile.mkdtemp(prefix="shop-chaos-"))
    report = run_on_new_stack(
        state,
        args.seconds,
        cluster=args.cluster,
        clients=args.clients,
        kill_every=tuple(args.kill_every),
        settle=args.settle,
        seed=args.seed,
    )
    print(report.render(), flush=True)
    if report.violations or args.keep:
        print(f"\nthe stack's folder (logs, Maildir, Restate's data): {state}")
    else:
        shutil.rmtree(state, ignore_errors=True)
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
