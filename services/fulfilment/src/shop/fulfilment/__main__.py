from shop.fulfilment.order_keys import order_keys
from shop.fulfilment.settings import settings
from shop.fulfilment.workflow import fulfilment
from shop.shared.serve import RestateService, run

# What this process serves: its contract with the other services is contracts/<name>.json.
SERVICES: list[RestateService] = [fulfilment, order_keys]

if __name__ == "__main__":
    run("fulfilment", SERVICES, settings)
