import pytest

from shop.shared.ownership import DEV_ADMIN_TOKEN, OperatorSettings

TOKEN = "3c9d1f7a5e2b8046c1d9e7f3a5b2c804"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch) -> None:
    monkeypatch.delenv("ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("SHOP_DEV_MODE", raising=False)


def test_only_the_operators_token_is_an_operators(monkeypatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", TOKEN)
    settings = OperatorSettings()
    assert settings.is_operator(TOKEN)
    assert not settings.is_operator(TOKEN[:-1])
    assert not settings.is_operator("")
    assert not settings.is_operator(None)
    assert not settings.is_operator(DEV_ADMIN_TOKEN)


def test_without_a_token_nobody_is_an_operator_outside_dev_mode() -> None:
    assert not OperatorSettings().is_operator("")
    assert not OperatorSettings().is_operator(DEV_ADMIN_TOKEN)


def test_dev_mode_takes_the_dev_token(monkeypatch) -> None:
    monkeypatch.setenv("SHOP_DEV_MODE", "true")
    assert OperatorSettings().is_operator(DEV_ADMIN_TOKEN)
