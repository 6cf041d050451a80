from shop.orders import operations  # noqa: F401  (OrderBook's operator handlers)
from shop.orders.gauges import before_scrape
from shop.orders.handlers import order_book, orders
from shop.orders.reconciliation import reconciliation, reconciliations, schedule
from shop.orders.refunds import refund
from shop.orders.settings import settings
from shop.shared.serve import RestateService, run

# What this process serves: its contract with the other services is contracts/<name>.json.
SERVICES: list[RestateService] = [
    orders,
    order_book,
    refund,
    reconciliation,
    reconciliations,
    schedule,
]

if __name__ == "__main__":
    # The orders service also reports, when scraped, Restate's invocations by state (paused,
    # backing-off, ...), the orders running and the book's lag, for the operators' alerts.
    run("orders", SERVICES, settings, before_scrape=before_scrape())
