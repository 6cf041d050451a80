"""Restate service and handler names: part of the contract between deployments."""

FULFILMENT = "OrderFulfilment"
PAYMENTS = "Payments"
INVENTORY = "Inventory"
EMAIL = "Email"
ORDER_KEYS = "OrderKeys"
MAIL_QUOTA = "MailQuota"
ORDERS = "Orders"  # the order book's writes, one virtual object per order
ORDER_BOOK = "OrderBook"  # its reads
REFUND = "Refund"  # one workflow per refund of a completed order
RECONCILIATION = "Reconciliation"  # Stripe against the book, over a window
RECONCILIATIONS = "Reconciliations"  # operators start one and read the reports
RECONCILIATION_SCHEDULE = "ReconciliationSchedule"  # the daily run's durable timer
