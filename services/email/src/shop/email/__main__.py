from shop.email.handlers import email
from shop.email.settings import settings
from shop.shared.serve import run

run("email", [email], settings)
