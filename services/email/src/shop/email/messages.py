"""Building the customer's mail: pure functions, so they are tested without SMTP."""

from email.headerregistry import BaseHeader
from email.message import EmailMessage
from email.policy import default
from functools import cache

from shop.shared.contracts.common import money
from shop.shared.contracts.email import EmailRequest


def message_id(order_id: str, kind: str, refund_id: str | None = None) -> str:
    """Stable per order and kind (and refund: an order may have several): a resent message
    is recognisably the same message."""
    refund = f".{refund_id}" if refund_id else ""
    return f"<{order_id}.{kind}{refund}@shop.example>"


SUBJECTS = {
    "confirmation": "Your order {order_id} is confirmed",
    "failed": "Your order {order_id} could not be completed",
    "cancelled": "Your order {order_id} is cancelled",
    "refunded": "Your order {order_id}: {total} refunded",
}

OPENINGS = {
    "confirmation": "Thank you for your order {order_id}.",
    "failed": "We could not complete your order {order_id}: {reason}.",
    "cancelled": "Your order {order_id} is cancelled, as you asked.",
    # The operator's reason for a refund is for the books, not the mail.
    "refunded": "We have refunded {total} of your order {order_id}.",
}

CLOSINGS = {
    "confirmation": "Total charged: {total}",
    "failed": "Nothing has been charged: any hold on your card ({total}) is released.",
    "cancelled": "Nothing has been charged: any hold on your card ({total}) is released.",
    "refunded": "The money is on its way back to your card; banks take a few days to show it.",
}


def deliverable(address: str) -> str:
    """The address as SMTP takes it: an internationalised domain in punycode
    (x@bücher.de -> x@xn--bcher-kva.de), which every server accepts. A non-ASCII local part
    stays as it is: only a server that offers SMTPUTF8 takes it (the send says so)."""
    local, _, domain = address.rpartition("@")
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError as e:
        raise ValueError("the address's domain is no valid internationalised name") from e


@cache
def sender_header(sender: str) -> BaseHeader:
    """The From header, parsed once: it is the same on every mail, and parsing an address is
    a third of a millisecond (a message takes its header as it is, since it is one already)."""
    header: BaseHeader = default.header_factory("From", sender)
    return header


def compose(request: EmailRequest, sender: str) -> EmailMessage:
    values = {
        "order_id": request.order_id,
        "reason": request.reason or "unknown reason",
        "total": money(request.total_cents, request.currency),
    }
    msg = EmailMessage()
    msg["From"] = sender_header(sender)
    msg["To"] = deliverable(request.to)
    msg["Subject"] = SUBJECTS[request.kind].format(**values)
    msg["Message-ID"] = message_id(request.order_id, request.kind, request.refund_id)
    lines = "\n".join(
        f"  {line.quantity} x {line.name} ({line.product_id})"
        f"  {money(line.total_cents, request.currency)}"
        for line in request.lines
    )
    body = [OPENINGS[request.kind].format(**values), lines, CLOSINGS[request.kind].format(**values)]
    msg.set_content("\n\n".join(part for part in body if part) + "\n")
    return msg
