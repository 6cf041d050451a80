from shop.fulfilment.order_keys import order_keys
from shop.fulfilment.settings import settings
from shop.fulfilment.workflow import fulfilment
from shop.shared.serve import run

run("fulfilment", [fulfilment, order_keys], settings)
