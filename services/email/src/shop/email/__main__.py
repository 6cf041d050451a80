from shop.email.handlers import email
from shop.email.quota import mail_quota
from shop.email.settings import settings
from shop.shared.serve import run

run("email", [email, mail_quota], settings)
