from shop.inventory.handlers import inventory
from shop.inventory.settings import settings
from shop.shared.serve import run

run("inventory", [inventory], settings)
