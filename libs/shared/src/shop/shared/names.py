"""Restate service and handler names: part of the contract between deployments."""

FULFILMENT = "OrderFulfilment"
PAYMENTS = "Payments"
INVENTORY = "Inventory"
EMAIL = "Email"
ORDER_KEYS = "OrderKeys"
MAIL_QUOTA = "MailQuota"
