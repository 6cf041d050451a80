"""Restate service and handler names: part of the contract between deployments."""

FULFILMENT = "OrderFulfilment"
PAYMENTS = "Payments"
INVENTORY = "Inventory"
EMAIL = "Email"
ORDER_KEYS = "OrderKeys"
MAIL_QUOTA = "MailQuota"
ORDERS = "Orders"  # the order book's writes, one virtual object per order
ORDER_BOOK = "OrderBook"  # its reads
