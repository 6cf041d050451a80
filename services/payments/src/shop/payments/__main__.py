from shop.payments.handlers import payments
from shop.payments.settings import settings
from shop.shared.serve import run

run("payments", [payments], settings)
