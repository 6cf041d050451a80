"""Building the customer's mail: pure functions, so they are tested without SMTP."""

from email.message import EmailMessage

from shop.shared.models import EmailRequest, money


def message_id(order_id: str, kind: str) -> str:
    """Stable per order and kind: a resent message is recognisably the same message."""
    return f"<{order_id}.{kind}@shop.example>"


SUBJECTS = {
    "confirmation": "Your order {order_id} is confirmed",
    "failed": "Your order {order_id} could not be completed",
    "cancelled": "Your order {order_id} is cancelled",
}

OPENINGS = {
    "confirmation": "Thank you for your order {order_id}.",
    "failed": "We could not complete your order {order_id}: {reason}.",
    "cancelled": "Your order {order_id} is cancelled, as you asked.",
}

CLOSINGS = {
    "confirmation": "Total charged: {total}",
    "failed": "Nothing has been charged: any hold on your card ({total}) is released.",
    "cancelled": "Nothing has been charged: any hold on your card ({total}) is released.",
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


def compose(request: EmailRequest, sender: str) -> EmailMessage:
    values = {
        "order_id": request.order_id,
        "reason": request.reason or "unknown reason",
        "total": money(request.total_cents, request.currency),
    }
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = deliverable(request.to)
    msg["Subject"] = SUBJECTS[request.kind].format(**values)
    msg["Message-ID"] = message_id(request.order_id, request.kind)
    lines = "\n".join(
        f"  {line.quantity} x {line.name} ({line.product_id})"
        f"  {money(line.total_cents, request.currency)}"
        for line in request.lines
    )
    msg.set_content(
        f"{OPENINGS[request.kind].format(**values)}\n\n{lines}\n\n"
        f"{CLOSINGS[request.kind].format(**values)}\n"
    )
    return msg
