from shop.inventory.handlers import inventory
from shop.inventory.settings import settings
from shop.shared.logs import setup_logging
from shop.shared.serve import run

setup_logging("inventory", settings.log_level)
run([inventory], settings)
