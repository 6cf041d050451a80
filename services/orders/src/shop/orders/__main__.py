from shop.orders import operations  # noqa: F401  (OrderBook's operator handlers)
from shop.orders.handlers import order_book, orders
from shop.orders.reconciliation import reconciliation, reconciliations, schedule
from shop.orders.refunds import refund
from shop.orders.settings import settings
from shop.shared.metrics import invocation_states
from shop.shared.serve import run

# The orders service also reports Restate's invocations by state (paused, backing-off, ...)
# for the operators' alerts, from Restate's admin API (RESTATE_ADMIN_URL).
run(
    "orders",
    [orders, order_book, refund, reconciliation, reconciliations, schedule],
    settings,
    before_scrape=invocation_states(settings.restate_admin_urls),
)
