from shop.email.handlers import email
from shop.email.settings import settings
from shop.shared.logs import setup_logging
from shop.shared.serve import run

setup_logging("email", settings.log_level)
run([email], settings)
