from shop.orders.handlers import order_book, orders
from shop.orders.reconciliation import reconciliation, reconciliations, schedule
from shop.orders.refunds import refund
from shop.orders.settings import settings
from shop.shared.serve import run

run("orders", [orders, order_book, refund, reconciliation, reconciliations, schedule], settings)
