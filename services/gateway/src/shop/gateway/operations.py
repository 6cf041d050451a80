"""An operator's action on one of an order's invocations in Restate, as the API and the
operator page ask for it (the orders service does it: the gateway has no admin rights)."""

from pydantic import BaseModel, ConfigDict, Field

from shop.shared.contracts.orders import OperatorActionKind


class ActionRequest(BaseModel):
    """`resume` a paused invocation, `retry` a backing-off one now, `kill` one (last resort:
    killing the order's run leaves what it holds: void the hold, release the stock)."""

    model_config = ConfigDict(extra="forbid")

    action: OperatorActionKind
    invocation_id: str = Field(pattern=r"^inv_[0-9A-Za-z]{1,64}$")
