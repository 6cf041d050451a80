"""Stripe idempotency keys of an order's payment steps: made by payments, recognised by the
gateway's webhook, which need not wake an order for an event the order's own request caused
(the order had Stripe's answer in that request's response)."""


def idempotency_key(order_id: str, step: str) -> str:
    """One step of one order: a replayed or retried step reuses it."""
    return f"shop-{order_id}-{step}"


def made_by_order(key: object, order_id: str) -> bool:
    """Whether an idempotency key is one of this order's own steps."""
    return isinstance(key, str) and key.startswith(idempotency_key(order_id, ""))
