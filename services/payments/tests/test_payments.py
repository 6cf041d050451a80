import stripe

from shop.payments.handlers import VOIDABLE, as_charge
from shop.payments.settings import PaymentsSettings
from shop.shared.stripe_keys import idempotency_key


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


def intent(**fields: object) -> stripe.PaymentIntent:
    base = {"id": "pi_1", "object": "payment_intent", "amount": 400, "status": "requires_capture"}
    return stripe.PaymentIntent.construct_from({**base, **fields}, "sk_test_x")


def test_a_card_that_needs_the_bank_gives_the_url_to_send_the_customer_to() -> None:
    redirect = {"url": "https://bank.example/3ds/pi_1", "return_url": "https://shop/orders/o"}
    asking = intent(
        status="requires_action",
        next_action={"type": "redirect_to_url", "redirect_to_url": redirect},
    )
    charge = as_charge("ord_1", asking)
    assert (charge.status, charge.action_url) == ("requires_action", redirect["url"])
    # Stripe's own SDK flow (no return_url given) has no URL the shop could show.
    sdk = intent(status="requires_action", next_action={"type": "use_stripe_sdk"})
    assert as_charge("ord_1", sdk).action_url is None
    assert as_charge("ord_1", intent(next_action=None)).action_url is None


def test_a_failed_bank_check_is_voided_like_a_hold() -> None:
    assert {"requires_payment_method", "requires_action", "requires_capture"} <= VOIDABLE
    assert not {"succeeded", "canceled"} & VOIDABLE
