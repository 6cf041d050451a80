from shop.orders.handlers import order_book, orders
from shop.orders.settings import settings
from shop.shared.serve import run

run("orders", [orders, order_book], settings)
