"""The Stripe emulator's events and their webhook delivery, as Stripe does them.

Every change of a PaymentIntent makes an Event (`evt_...`, `data.object` a snapshot of the
intent). With a webhook URL configured, each event is POSTed there in the background, signed
the way Stripe signs (`Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>"
keyed with the endpoint secret>`, fresh for every attempt), and retried with exponential
backoff on anything but a 2xx until it is acknowledged or too old. Events and the deliveries
not yet acknowledged are kept in the ledger's SQLite file when there is one, so a restarted
emulator goes on delivering where it stopped.
"""

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger("shop.dev.stripe_webhooks")

# The API version events are rendered in: the one the pinned stripe SDK speaks.
API_VERSION = "2026-10-28.endive"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def signature_header(payload: str, secret: str, timestamp: int) -> str:
    """Stripe's `Stripe-Signature` header for this body at this time."""
    signed = f"{timestamp}.{payload}".encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class Retry:
    """How delivery retries: Stripe retries for days in live mode; a dev stack an hour."""

    first_delay: float = 0.5
    max_delay: float = 30.0
    give_up_after: float = 3600.0
    timeout: float = 10.0


@dataclass
class Delivery:
    id: int
    event_id: str
    not_before: float  # unix time of the first attempt (a delay fault holds it back)
    created: float = field(default_factory=time.time)


class EventStore:
    """Events and pending deliveries: in memory, mirrored in the ledger's SQLite file. Only
    the newest `keep` events stay in memory (a long benchmark makes hundreds of thousands);
    older ones are still found by id in the file."""

    def __init__(self, db: sqlite3.Connection | None, keep: int = 10_000) -> None:
        self.db, self.keep = db, keep
        self.events: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.deliveries: dict[int, Delivery] = {}
        self.next_delivery = 1
        if db is None:
            return
        db.execute("CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, body TEXT)")
        db.execute(
            "CREATE TABLE IF NOT EXISTS deliveries (id INTEGER PRIMARY KEY, event_id TEXT, "
            "not_before REAL, created REAL)"
        )
        newest = db.execute("SELECT body FROM events ORDER BY rowid DESC LIMIT ?", (keep,))
        for (body,) in reversed(newest.fetchall()):
            event = json.loads(body)
            self.events[event["id"]] = event
        for row in db.execute("SELECT id, event_id, not_before, created FROM deliveries"):
            self.deliveries[row[0]] = Delivery(*row)
        self.next_delivery = max(self.deliveries, default=0) + 1

    def get(self, event_id: str) -> dict[str, Any] | None:
        if event_id in self.events:
            return self.events[event_id]
        if self.db is None:
            return None
        row = self.db.execute("SELECT body FROM events WHERE id = ?", (event_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def recent(self) -> list[dict[str, Any]]:
        """The events kept in memory, oldest first."""
        return list(self.events.values())

    def put_event(self, event: dict[str, Any]) -> None:
        self.events[event["id"]] = event
        while len(self.events) > self.keep:
            self.events.popitem(last=False)
        if self.db:
            self.db.execute(
                "INSERT INTO events (id, body) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                (event["id"], json.dumps(event)),
            )

    def add_delivery(self, event_id: str, not_before: float) -> Delivery:
        if self.db:  # SQLite's rowid counter outlives restarts and deleted rows
            cursor = self.db.execute(
                "INSERT INTO deliveries (event_id, not_before, created) VALUES (?, ?, ?)",
                (event_id, not_before, time.time()),
            )
            delivery_id = int(cursor.lastrowid or 0)
        else:
            delivery_id, self.next_delivery = self.next_delivery, self.next_delivery + 1
        delivery = Delivery(delivery_id, event_id, not_before)
        self.deliveries[delivery_id] = delivery
        return delivery

    def finish_delivery(self, delivery: Delivery) -> None:
        self.deliveries.pop(delivery.id, None)
        if self.db:
            self.db.execute("DELETE FROM deliveries WHERE id = ?", (delivery.id,))


@dataclass
class WebhookFaults:
    """What the Faults switches ask of the next events (the emulator's Faults model)."""

    duplicate: bool = False
    delay_ms: int = 0


class Webhooks:
    """Makes events and delivers them to one endpoint (`url`, or none: events only)."""

    def __init__(
        self,
        store: EventStore,
        url: str | None,
        secret: str,
        take_faults: Callable[[], WebhookFaults],
        retry: Retry | None = None,
        enabled_events: frozenset[str] | None = None,
    ) -> None:
        self.store, self.url, self.secret = store, url, secret
        # As a Stripe endpoint's enabled_events: only these types are sent (None: all, "*").
        self.enabled_events = enabled_events
        self.take_faults = take_faults
        self.retry = retry or Retry()
        self.tasks: set[asyncio.Task[None]] = set()
        self.client: httpx.AsyncClient | None = None

    # Events

    def emit(
        self, type_: str, obj: dict[str, Any], request: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Record an event about `obj` (a snapshot of it now) and deliver it, if the endpoint
        takes its type."""
        deliver = bool(self.url) and (self.enabled_events is None or type_ in self.enabled_events)
        event: dict[str, Any] = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": json.loads(json.dumps(obj))},
            "livemode": False,
            "pending_webhooks": 1 if deliver else 0,
            # The API request that caused it; null ids for what happened by itself (3DS page).
            "request": request or {"id": None, "idempotency_key": None},
            "type": type_,
        }
        self.store.put_event(event)
        if deliver:
            faults = self.take_faults()
            not_before = time.time() + faults.delay_ms / 1000
            for _ in range(2 if faults.duplicate else 1):
                self._schedule(self.store.add_delivery(event["id"], not_before))
        return event

    def resend(self, event_id: str) -> dict[str, Any] | None:
        """Deliver an event again now (a late duplicate, as Stripe's 'Resend' does)."""
        event = self.store.get(event_id)
        if event is not None and self.url:
            self._schedule(self.store.add_delivery(event_id, time.time()))
        return event

    # Delivery

    def resume(self) -> None:
        """Deliver what a previous run of the emulator left unacknowledged."""
        if not self.url:
            return
        for delivery in list(self.store.deliveries.values()):
            self._schedule(delivery)

    async def close(self) -> None:
        """Stop delivering (what is pending stays in the store for the next run)."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.client:
            await self.client.aclose()

    def _schedule(self, delivery: Delivery) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # made outside a running server: resume() picks it up
            return
        task = loop.create_task(self._deliver(delivery))
        self.tasks.add(task)  # the loop keeps weak references only
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, delivery: Delivery) -> None:
        await asyncio.sleep(max(0.0, delivery.not_before - time.time()))
        delay, attempt = self.retry.first_delay, 0
        event = self.store.get(delivery.event_id)
        while event is not None:
            attempt += 1
            if await self._attempt(event, attempt):
                if event["pending_webhooks"]:
                    event["pending_webhooks"] = 0
                    self.store.put_event(event)
                break
            if time.time() + delay - delivery.created > self.retry.give_up_after:
                log.warning("giving up on %s after %d attempts", delivery.event_id, attempt)
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry.max_delay)
        self.store.finish_delivery(delivery)

    async def _attempt(self, event: dict[str, Any], attempt: int) -> bool:
        """One POST of the event; whether the endpoint acknowledged it (a 2xx)."""
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=self.retry.timeout)
        payload = json.dumps(event, indent=2)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": signature_header(payload, self.secret, int(time.time())),
        }
        try:
            response = await self.client.post(str(self.url), content=payload, headers=headers)
        except httpx.HTTPError as e:
            log.info("%s %s attempt %d: %r", event["id"], event["type"], attempt, e)
            return False
        if 200 <= response.status_code < 300:
            return True
        log.info(
            "%s %s attempt %d: HTTP %d", event["id"], event["type"], attempt, response.status_code
        )
        return False
