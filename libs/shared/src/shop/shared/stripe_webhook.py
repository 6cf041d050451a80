"""The Stripe webhook endpoint's setup (the gateway's /webhooks/stripe): the events the gateway
acts on, which the endpoint subscribes to, and the dev stack's signing secret, with which its
Stripe emulator signs and the gateway checks in dev mode. Defined once for both."""

# A 3-D Secure check ended: the order waiting for it asks Stripe how the payment stands.
WAKING_EVENTS = frozenset(
    {"payment_intent.amount_capturable_updated", "payment_intent.payment_failed"}
)
DEV_WEBHOOK_SECRET = "whsec_shop_dev"
