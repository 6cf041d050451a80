from shop.payments.handlers import payments
from shop.payments.settings import settings
from shop.shared.serve import run

# What this process serves: its contract with the other services is contracts/<name>.json.
SERVICES = [payments]

if __name__ == "__main__":
    run("payments", SERVICES, settings)
