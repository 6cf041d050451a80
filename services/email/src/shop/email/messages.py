"""Building the customer's mail: pure functions, so they are tested without SMTP."""

from email.message import EmailMessage

from shop.shared.models import EmailRequest


def message_id(order_id: str, kind: str) -> str:
    """Stable per order and kind: a resent message is recognisably the same message."""
    return f"<{order_id}.{kind}@shop.example>"


def money(cents: int, currency: str) -> str:
    return f"{cents / 100:.2f} {currency.upper()}"


def confirmation(request: EmailRequest, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = request.to
    msg["Subject"] = f"Your order {request.order_id} is confirmed"
    msg["Message-ID"] = message_id(request.order_id, request.kind)
    lines = "\n".join(
        f"  {line.quantity} x {line.name} ({line.product_id})"
        f"  {money(line.quantity * line.unit_price_cents, request.currency)}"
        for line in request.lines
    )
    msg.set_content(
        f"Thank you for your order {request.order_id}.\n\n{lines}\n\n"
        f"Total charged: {money(request.total_cents, request.currency)}\n"
    )
    return msg
