from shop.shared.settings import ServiceSettings


class EmailSettings(ServiceSettings):
    port: int = 9084
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_timeout_seconds: float = 10
    mail_from: str = "shop <orders@shop.example>"
    # Mails about a failed order (a declined card costs nothing to try) per address per hour.
    failed_mails_per_address_per_hour: int = 5


settings = EmailSettings()
