"""Restate service and handler names: part of the contract between deployments."""

FULFILMENT = "OrderFulfilment"
PAYMENTS = "Payments"
INVENTORY = "Inventory"
EMAIL = "Email"

# Valkey pub/sub channel the workflow publishes progress to; one per deployment, not per order,
# so each gateway process holds a single subscription and fans events out to its clients.
PROGRESS_CHANNEL = "shop:order-progress"
