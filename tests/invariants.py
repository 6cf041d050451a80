"""What must hold after any run, read only through public interfaces: the Stripe API (the
official SDK), the Maildir the SMTP server delivers to, and the gateway's API. Shared by the
e2e tests' after-each-test check and the chaos run."""

import mailbox
from pathlib import Path

import httpx
import stripe
from stripe.params import PaymentIntentListParams

FINAL = {"completed", "failed", "cancelled"}
# A completed order's status in the book once money went back.
REFUNDED = {"partially_refunded", "refunded"}
# A word of the subject of the one mail each final order sends, by final status; and of the
# one each refund that succeeded sends.
SUBJECT_WORD = {
    "completed": "confirmed",
    "failed": "could not be completed",
    "cancelled": "cancelled",
}
REFUND_WORD = "refunded"


def stripe_client(stripe_url: str) -> stripe.StripeClient:
    """The Stripe API as an operator would query it, through the official SDK."""
    return stripe.StripeClient("sk_test_e2e", base_addresses={"api": stripe_url})


class IntentListParams(PaymentIntentListParams, total=False):
    """Stripe's parameters of a list of PaymentIntents, and the Stripe emulator's own filter
    on their metadata (Stripe's API finds intents by metadata with its search instead)."""

    metadata: dict[str, str]


def of_order(order_id: str) -> IntentListParams:
    """The order's PaymentIntents (the payments service tags each with its order id)."""
    return {"metadata": {"order_id": order_id}}


def money_kept(stripe_api: stripe.StripeClient, order_id: str) -> tuple[int, bool]:
    """Cents the shop keeps for an order (captured minus refunded), and whether a hold remains."""
    intents = stripe_api.v1.payment_intents.list(params=of_order(order_id))
    kept, held = 0, False
    for intent in intents.data:
        held = held or intent.status == "requires_capture"
        refunds = stripe_api.v1.refunds.list(params={"payment_intent": intent.id})
        kept += intent.amount_received - sum(r.amount for r in refunds.data)
    return kept, held


class Mail:
    """The customers' inboxes: every message the SMTP server accepted, in its Maildir."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir

    def messages(self) -> list[mailbox.MaildirMessage]:
        return list(mailbox.Maildir(self.maildir, create=False))

    def to(self, address: str, order_id: str) -> list[mailbox.MaildirMessage]:
        return [
            m for m in self.messages() if m["To"] == address and order_id in (m["Subject"] or "")
        ]

    def received(self, address: str, order_id: str) -> dict[str, mailbox.MaildirMessage]:
        """What the customer's mail client shows: one message per Message-ID."""
        return {m["Message-ID"]: m for m in self.to(address, order_id)}

    def inboxes(self) -> dict[str, dict[str, mailbox.MaildirMessage]]:
        """Every address's inbox as its mail client shows it (one message per Message-ID),
        read in one pass: for checking thousands of orders at once."""
        boxes: dict[str, dict[str, mailbox.MaildirMessage]] = {}
        for m in self.messages():
            boxes.setdefault(m["To"], {})[m["Message-ID"]] = m
        return boxes


def booked(gateway: httpx.Client, admin: dict[str, str], order_id: str) -> dict | None:
    """The order's record in the order book (through the gateway's admin API), once the book
    has its final status and no refund of it is pending; None until then."""
    response = gateway.get(f"/api/admin/orders/{order_id}", headers=admin)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    record = response.json()
    if any(r["status"] == "pending" for r in record["refunds"]):
        return None
    return record if record["status"] in FINAL | REFUNDED else None


def refunds_done(record: dict) -> list[dict]:
    return [r for r in record["refunds"] if r["status"] == "succeeded"]


def book_status(status: str, record: dict) -> str:
    """What the book says of an order that ended `status`, after its refunds."""
    if status != "completed" or not record["refunded_cents"]:
        return status
    return "refunded" if record["refunded_cents"] == record["total_cents"] else "partially_refunded"


def book_agrees(record: dict, status: str, total_cents: int | None = None) -> None:
    """The book's record of a final order: its final status once, last, with the history's
    sequence whole (every step recorded once, in order); its refunds after it, adding up."""
    expected = book_status(status, record)
    assert record["status"] == expected, (record["order_id"], record["status"], expected)
    history = [h for h in record["history"] if h["step"] != "refund"]
    assert [h["status"] for h in history].count(status) == 1, history
    assert history[-1]["status"] == status, history
    refunded = sum(r["amount_cents"] for r in refunds_done(record))
    assert record["refunded_cents"] == refunded <= record["total_cents"], record
    assert [h["at"] for h in history] == sorted(h["at"] for h in history), history
    lines = sum(line["quantity"] * line["unit_price_cents"] for line in record["lines"])
    assert record["total_cents"] == lines, record
    if total_cents is not None:
        assert record["total_cents"] == total_cents, record
