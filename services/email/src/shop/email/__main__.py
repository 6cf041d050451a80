from shop.email.handlers import email
from shop.email.quota import mail_quota
from shop.email.settings import settings
from shop.shared.serve import RestateService, run

# What this process serves: its contract with the other services is contracts/<name>.json.
SERVICES: list[RestateService] = [email, mail_quota]

if __name__ == "__main__":
    run("email", SERVICES, settings)
