from shop.payments.handlers import payments
from shop.payments.settings import settings
from shop.shared.logs import setup_logging
from shop.shared.serve import run

setup_logging("payments", settings.log_level)
run([payments], settings)
