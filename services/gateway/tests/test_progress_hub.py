"""What Valkey pushes is a hint: a link to the bank survives only if it goes where payments'
links go."""

import pytest

from shop.gateway.progress_hub import pushed_status
from shop.shared.contracts.fulfilment import OrderStatus

EMULATOR = "http://127.0.0.1:12111"


def pushed(action_url: str) -> bytes:
    status = OrderStatus(
        order_id="ord_000000000000000000000001",
        status="running",
        step="authenticating",
        percent=15,
        message="Confirm the payment with your bank",
        seq=3,
        action_url=action_url,
    )
    return status.model_dump_json().encode()


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.stripe.com/3d_secure_2/hosted?x=1",
        f"{EMULATOR}/3ds/pi_123",
    ],
)
def test_a_link_to_stripe_or_the_configured_emulator_is_kept(url: str) -> None:
    assert pushed_status(pushed(url), EMULATOR).action_url == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "http://evil.example/3ds",
        f"{EMULATOR}.evil.example/3ds",  # the emulator's address as a prefix of another host
        "//evil.example/3ds",
    ],
)
def test_any_other_link_is_dropped(url: str) -> None:
    status = pushed_status(pushed(url), EMULATOR)
    assert status.action_url is None and status.step == "authenticating"


def test_without_an_emulator_only_https_links_are_kept() -> None:
    assert pushed_status(pushed(f"{EMULATOR}/3ds/pi_123")).action_url is None
