"""Settings read from the environment (pydantic-settings); the defaults are the local stack's."""

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from restate.retry_policy import InvocationRetryPolicy


def secrets_dir() -> Path | None:
    """Where secrets may come from as files, one per setting, named like it in lower case
    (`admin_token`, `orders_database_password`, ...): SHOP_SECRETS_DIR, else /run/secrets
    when it exists (compose's and k8s's mounts). An environment variable of the same name
    wins over the file."""
    configured = os.environ.get("SHOP_SECRETS_DIR")
    if configured:
        return Path(configured)
    default = Path("/run/secrets")
    return default if default.is_dir() else None


def split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# A list set as one comma-separated string (`a,b`), not pydantic-settings' JSON.
CommaSeparated = Annotated[list[str], NoDecode, BeforeValidator(split_commas)]


class ShopSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", secrets_dir=secrets_dir())

    # RESTATE_INGRESS_URL, RESTATE_ADMIN_URL: one URL each, or, for a Restate cluster, several
    # comma-separated (any node answers for the whole cluster; the next is tried when one
    # cannot be reached).
    restate_ingress_urls: CommaSeparated = Field(
        ["http://127.0.0.1:8080"], validation_alias="restate_ingress_url", min_length=1
    )
    restate_admin_urls: CommaSeparated = Field(
        ["http://127.0.0.1:9070"], validation_alias="restate_admin_url", min_length=1
    )
    valkey_url: str = "redis://127.0.0.1:6379/0"
    # VALKEY_PASSWORD: Valkey's `requirepass` (compose, k8s); none for the dev stack's, which
    # listens on loopback only.
    valkey_password: SecretStr = SecretStr("")
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"  # the dev stack sets text, for a terminal
    # SHOP_DEV_MODE: the local stack (and a process run by hand beside it). Only in dev mode may
    # the gateway fall back to the dev admin token, and a service run without request signing.
    shop_dev_mode: bool = False
    # After SIGTERM, how long a process may finish what it is doing before it exits anyway
    # (keep it under the stop timeout of whatever runs it: supervisord and compose give 10 s).
    shutdown_drain_seconds: float = 5


class ServiceSettings(ShopSettings):
    """A Restate service process: where it listens and how it registers itself."""

    bind_host: str = "127.0.0.1"
    port: int
    # The URL Restate dials to reach this process; defaults to http://{bind_host}:{port}.
    advertised_url: str | None = None
    restate_register: bool = True
    # Re-register over an existing deployment at the same URL: dev only, where code changes
    # in place. In production a new version gets a new URL and Restate keeps both.
    restate_register_force: bool = False
    # RESTATE_IDENTITY_KEYS: comma-separated `publickeyv1_...` keys; the service accepts only
    # requests the Restate server signed with one of them (several during a key rotation).
    identity_keys: CommaSeparated = Field([], validation_alias="restate_identity_keys")
    # A step that keeps failing (Stripe or the mail server answering errors) is retried with
    # a growing delay, then paused for an operator (resume, retry now, kill) rather than
    # retried forever: by default after 20 attempts, about 14 minutes.
    retry_max_attempts: int = 20
    retry_initial_seconds: float = 0.5
    retry_max_interval_seconds: float = 60

    @property
    def pause_when_stuck(self) -> InvocationRetryPolicy:
        """Restate's retry policy for a service whose steps call the outside world."""
        return InvocationRetryPolicy(
            initial_interval=timedelta(seconds=self.retry_initial_seconds),
            exponentiation_factor=2,
            max_interval=timedelta(seconds=self.retry_max_interval_seconds),
            max_attempts=self.retry_max_attempts,
            on_max_attempts="pause",
        )

    @property
    def deployment_url(self) -> str:
        return self.advertised_url or f"http://{self.bind_host}:{self.port}"
