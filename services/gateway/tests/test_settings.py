import subprocess
import sys

import pytest
from pydantic import ValidationError

from shop.gateway.settings import GatewaySettings
from shop.shared.ownership import DEV_ADMIN_TOKEN
from shop.shared.stripe_webhook import DEV_WEBHOOK_SECRET

TOKEN = "9f8e2c41d7b35a06e1c9f4b28d6a7e30"  # as `openssl rand -hex 16` prints one
WEBHOOK_SECRET = "whsec_7Qm2XcVb9LkP4sRt1YwZ8nHd3FgJ6aEu"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch) -> None:
    monkeypatch.delenv("ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("SHOP_DEV_MODE", raising=False)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)


def test_no_admin_token_outside_dev_mode_is_refused() -> None:
    with pytest.raises(ValidationError, match="ADMIN_TOKEN is not set"):
        GatewaySettings()


def test_the_published_dev_token_is_refused_outside_dev_mode(monkeypatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", DEV_ADMIN_TOKEN)
    with pytest.raises(ValidationError, match="published dev token"):
        GatewaySettings()


def test_a_token_of_ones_own_is_used(monkeypatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", TOKEN)
    assert GatewaySettings().admin_token.get_secret_value() == TOKEN


def test_dev_mode_falls_back_to_the_dev_token(monkeypatch) -> None:
    monkeypatch.setenv("SHOP_DEV_MODE", "true")
    assert GatewaySettings().admin_token.get_secret_value() == DEV_ADMIN_TOKEN


def test_the_gateway_process_exits_saying_why(monkeypatch) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shop.gateway"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "refusing to start: ADMIN_TOKEN is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_webhook_secret_outside_dev_mode_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", TOKEN)
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    with pytest.raises(ValidationError, match="STRIPE_WEBHOOK_SECRET is not set"):
        GatewaySettings()


def test_the_published_dev_webhook_secret_is_refused_outside_dev_mode(monkeypatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET)
    with pytest.raises(ValidationError, match="published dev secret"):
        GatewaySettings()


def test_dev_mode_falls_back_to_the_dev_webhook_secret(monkeypatch) -> None:
    monkeypatch.setenv("SHOP_DEV_MODE", "true")
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    assert GatewaySettings().stripe_webhook_secret.get_secret_value() == DEV_WEBHOOK_SECRET


@pytest.mark.parametrize(
    "token",
    ["a", "short-but-random-9f8e2c", "replace-me-with-openssl-rand-hex-32", "a" * 40],
    ids=["one-letter", "short", "the-example", "no-variety"],
)
def test_a_weak_or_placeholder_admin_token_is_refused(monkeypatch, token: str) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", token)
    with pytest.raises(ValidationError, match="ADMIN_TOKEN is too weak or a placeholder"):
        GatewaySettings()


@pytest.mark.parametrize(
    "secret",
    ["whsec_replace_me", "whsec_of_your_webhook_endpoint", "whsec_short", WEBHOOK_SECRET[6:]],
    ids=["the-example", "the-k8s-readme-placeholder", "short", "no-prefix"],
)
def test_a_webhook_secret_not_in_stripes_format_is_refused(monkeypatch, secret: str) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", secret)
    with pytest.raises(ValidationError, match="not a Stripe signing secret"):
        GatewaySettings()


def test_stripe_cli_and_dashboard_secrets_are_taken(monkeypatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", TOKEN)
    for secret in (f"whsec_{'0a1b2c3d4e5f6789' * 4}", WEBHOOK_SECRET):
        monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", secret)
        assert GatewaySettings().stripe_webhook_secret.get_secret_value() == secret
