import subprocess
import sys

import pytest
from pydantic import ValidationError

from shop.gateway.settings import DEV_ADMIN_TOKEN, DEV_WEBHOOK_SECRET, GatewaySettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch) -> None:
    monkeypatch.delenv("ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("SHOP_DEV_MODE", raising=False)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_of_our_own")


def test_no_admin_token_outside_dev_mode_is_refused() -> None:
    with pytest.raises(ValidationError, match="ADMIN_TOKEN is not set"):
        GatewaySettings()


def test_the_published_dev_token_is_refused_outside_dev_mode(monkeypatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", DEV_ADMIN_TOKEN)
    with pytest.raises(ValidationError, match="published dev token"):
        GatewaySettings()


def test_a_token_of_ones_own_is_used(monkeypatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", "s3cret-of-our-own")
    assert GatewaySettings().admin_token.get_secret_value() == "s3cret-of-our-own"


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
    monkeypatch.setenv("ADMIN_TOKEN", "s3cret-of-our-own")
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    with pytest.raises(ValidationError, match="STRIPE_WEBHOOK_SECRET is not set"):
        GatewaySettings()


def test_the_published_dev_webhook_secret_is_refused_outside_dev_mode(monkeypatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", "s3cret-of-our-own")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET)
    with pytest.raises(ValidationError, match="published dev secret"):
        GatewaySettings()


def test_dev_mode_falls_back_to_the_dev_webhook_secret(monkeypatch) -> None:
    monkeypatch.setenv("SHOP_DEV_MODE", "true")
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    assert GatewaySettings().stripe_webhook_secret.get_secret_value() == DEV_WEBHOOK_SECRET
