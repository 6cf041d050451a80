import logging

import pytest

from shop.shared.serve import RequestSigningMisconfigured, restate_app
from shop.shared.settings import ServiceSettings

KEY = "publickeyv1_FAe4sisG95oZ42w7buUn5qEE4TAnfTTFPiguZUHmhiF"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch) -> None:
    monkeypatch.setenv("PORT", "9082")
    monkeypatch.delenv("RESTATE_IDENTITY_KEYS", raising=False)
    monkeypatch.delenv("SHOP_DEV_MODE", raising=False)


def test_a_service_without_identity_keys_refuses_to_start() -> None:
    with pytest.raises(RequestSigningMisconfigured, match="RESTATE_IDENTITY_KEYS is not set"):
        restate_app([], ServiceSettings())


def test_dev_mode_without_keys_accepts_unsigned_requests_loudly(monkeypatch, caplog) -> None:
    monkeypatch.setenv("SHOP_DEV_MODE", "true")
    with caplog.at_level(logging.WARNING):
        restate_app([], ServiceSettings())
    assert "UNSIGNED" in caplog.text


def test_keys_are_checked_at_startup(monkeypatch) -> None:
    monkeypatch.setenv("RESTATE_IDENTITY_KEYS", KEY)
    restate_app([], ServiceSettings())
    monkeypatch.setenv("RESTATE_IDENTITY_KEYS", f"{KEY},publickeyv1_0OIl")  # not base58
    with pytest.raises(RequestSigningMisconfigured, match="rejects"):
        restate_app([], ServiceSettings())
