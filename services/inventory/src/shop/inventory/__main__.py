from shop.inventory.handlers import inventory
from shop.inventory.settings import settings
from shop.shared.serve import run

# What this process serves: its contract with the other services is contracts/<name>.json.
SERVICES = [inventory]

if __name__ == "__main__":
    run("inventory", SERVICES, settings)
