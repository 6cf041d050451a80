"""The email service's contract (Email, MailQuota): what its handlers take and answer. Owned by
the email team; contracts/Email.json and MailQuota.json are its recorded shape."""

from typing import Literal

from pydantic import BaseModel

from shop.shared.contracts.common import OrderLine

EmailKind = Literal["confirmation", "failed", "cancelled", "refunded"]


class EmailRequest(BaseModel):
    order_id: str
    to: str
    kind: EmailKind
    lines: list[OrderLine]
    total_cents: int  # of a refund's mail: the amount refunded
    currency: str
    reason: str | None = None
    refund_id: str | None = None  # a refund's mail: one per refund


class EmailReceipt(BaseModel):
    message_id: str


class MailAllowance(BaseModel):
    """Whether one more mail of a throttled kind may go to an address now."""

    allowed: bool
