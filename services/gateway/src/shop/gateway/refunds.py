"""An operator's refund of a completed order, as the API and the operator page ask for it."""

import secrets
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from shop.shared.contracts.orders import RefundAsk
from shop.shared.ownership import sha256

REFUND_ID_PATTERN = r"^ref_[0-9a-f]{24}$"


class RefundRequest(BaseModel):
    """`POST /api/admin/orders/{id}/refunds`. Strict types: `true` or `"5"` is no amount."""

    model_config = ConfigDict(extra="forbid")

    amount_cents: StrictInt | None = Field(
        None, ge=1, le=100_000_000, description="Cents to give back; none: all that is left."
    )
    # What the books say of it: not blank, printable (PostgreSQL takes no NUL).
    reason: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$"
        ),
    ]
    restock: StrictBool = Field(False, description="The order's items go back on the shelf.")


def new_refund_id() -> str:
    return f"ref_{secrets.token_hex(12)}"


def refund_ask(request: RefundRequest, idempotency_key: str | None) -> RefundAsk:
    """What the orders service is asked; with an Idempotency-Key, its digest and the body's,
    so the same request again is the same refund and another one under the key a conflict."""
    keyed = {}
    if idempotency_key is not None:
        keyed = {"key": sha256(idempotency_key), "fingerprint": sha256(request.model_dump_json())}
    return RefundAsk(
        refund_id=new_refund_id(),
        amount_cents=request.amount_cents,
        reason=request.reason,
        restock=request.restock,
        operator_token="",  # the ingress client puts the operators' token in
        **keyed,
    )
