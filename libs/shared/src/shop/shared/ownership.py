"""Who may change what, checked inside Restate too, as a second line behind the gateway:
whoever shows an order's secret (handed to the customer once) may cancel that order, and
whoever shows the operators' ADMIN_TOKEN may cancel any order and set stock. Only digests
are kept and compared, in constant time."""

import hashlib
import hmac

from pydantic import SecretStr

from shop.shared.settings import ShopSettings

# The local stack's admin token, documented in the README: usable in dev mode only.
DEV_ADMIN_TOKEN = "dev-admin-token"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def secret_matches(secret: str | None, digest: str) -> bool:
    """Whether `secret` is the one `digest` was made of, compared in constant time."""
    if not secret or not digest:
        return False
    return hmac.compare_digest(sha256(secret), digest)


class OperatorSettings(ShopSettings):
    """For a service that takes operators' actions: ADMIN_TOKEN, the same secret the gateway
    checks. Unset, no operator action is taken (dev mode: the dev token)."""

    admin_token: SecretStr = SecretStr("")

    def is_operator(self, token: str | None) -> bool:
        own = self.admin_token.get_secret_value().strip()
        if not own and self.shop_dev_mode:
            own = DEV_ADMIN_TOKEN
        return secret_matches(token, sha256(own)) if own else False
