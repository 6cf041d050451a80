from shop.payments.handlers import idempotency_key
from shop.payments.settings import PaymentsSettings


def test_idempotency_key_is_derived_from_order_and_step() -> None:
    assert idempotency_key("ord_1", "charge") == idempotency_key("ord_1", "charge")
    assert idempotency_key("ord_1", "charge") != idempotency_key("ord_1", "refund")
    assert idempotency_key("ord_1", "charge") != idempotency_key("ord_2", "charge")


def test_settings_read_the_stripe_base_and_keep_the_key_secret(monkeypatch) -> None:
    monkeypatch.setenv("STRIPE_API_BASE", "http://127.0.0.1:12111")
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_secret")
    settings = PaymentsSettings()
    assert settings.stripe_api_base == "http://127.0.0.1:12111"
    assert "sk_test_secret" not in repr(settings)
    assert settings.port == 9082
