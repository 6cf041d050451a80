"""The dev stack wires the Stripe emulator's webhooks to the gateway, with one secret."""

from pathlib import Path

import pytest

from shop.dev.stack import Ports, Stack


def test_the_emulator_posts_its_events_to_the_gateway_with_the_shared_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    stack = Stack(state=tmp_path, ports=Ports.free())
    command, env = stack.programs()["stripe"]
    gateway = stack.ports.gateway
    assert command[command.index("--webhook-url") + 1] == (
        f"http://127.0.0.1:{gateway}/webhooks/stripe"
    )
    assert command[command.index("--public-url") + 1] == stack.stripe_url
    assert env["STRIPE_WEBHOOK_SECRET"] == "whsec_shop_dev"
    assert stack.shared_env()["STRIPE_WEBHOOK_SECRET"] == "whsec_shop_dev"
    _, gateway_env = stack.programs()["gateway"]
    assert gateway_env["STRIPE_WEBHOOK_SECRET"] == env["STRIPE_WEBHOOK_SECRET"]


def test_a_webhook_secret_from_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_from_env")
    stack = Stack(state=tmp_path, ports=Ports.free())
    assert stack.programs()["stripe"][1]["STRIPE_WEBHOOK_SECRET"] == "whsec_from_env"
    assert stack.shared_env()["STRIPE_WEBHOOK_SECRET"] == "whsec_from_env"
