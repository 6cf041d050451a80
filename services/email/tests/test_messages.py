import pytest

from shop.email.messages import compose, deliverable, message_id
from shop.shared.contracts.common import OrderLine
from shop.shared.contracts.email import EmailRequest


def test_confirmation_names_order_items_and_total() -> None:
    request = EmailRequest(
        order_id="ord_1",
        to="ann@example.com",
        lines=[
            OrderLine(
                product_id="mug-classic", name="Classic mug", quantity=2, unit_price_cents=1200
            )
        ],
        total_cents=2400,
        currency="eur",
        kind="confirmation",
    )
    msg = compose(request, "shop <orders@shop.example>")
    assert msg["To"] == "ann@example.com" and "ord_1" in msg["Subject"]
    assert msg["Message-ID"] == message_id("ord_1", "confirmation")
    body = msg.get_content()
    assert "2 x Classic mug" in body and "24.00 EUR" in body


def test_message_id_is_stable_per_order_and_kind() -> None:
    assert message_id("ord_1", "confirmation") == message_id("ord_1", "confirmation")
    assert message_id("ord_1", "confirmation") != message_id("ord_2", "confirmation")


def test_failure_mail_gives_the_reason_and_says_nothing_is_charged() -> None:
    request = EmailRequest(
        order_id="ord_2",
        to="bo@example.com",
        kind="failed",
        reason="payment declined",
        lines=[],
        total_cents=100,
        currency="eur",
    )
    msg = compose(request, "shop <orders@shop.example>")
    assert "could not be completed" in msg["Subject"]
    assert (
        "payment declined" in msg.get_content() and "Nothing has been charged" in msg.get_content()
    )
    assert msg["Message-ID"] == message_id("ord_2", "failed")


def test_an_internationalised_domain_is_sent_as_punycode() -> None:
    assert deliverable("x@bücher.de") == "x@xn--bcher-kva.de"
    assert deliverable("ann@example.com") == "ann@example.com"
    assert deliverable("ü@example.com") == "ü@example.com"  # only SMTPUTF8 can carry it


def test_a_domain_no_idna_can_encode_is_refused() -> None:
    with pytest.raises(ValueError, match="no valid internationalised name"):
        deliverable("x@" + "ü" * 80 + ".de")  # a label longer than 63 characters


def test_each_refund_is_a_mail_of_its_own_with_the_amount_refunded() -> None:
    def refund_mail(refund_id: str) -> EmailRequest:
        return EmailRequest(
            order_id="ord_3",
            to="cy@example.com",
            kind="refunded",
            lines=[],
            total_cents=550,
            currency="eur",
            reason="damaged in transit",
            refund_id=refund_id,
        )

    first = compose(refund_mail("ref_a"), "shop <orders@shop.example>")
    second = compose(refund_mail("ref_b"), "shop <orders@shop.example>")
    assert "ord_3" in first["Subject"] and "5.50 EUR refunded" in first["Subject"]
    assert first["Message-ID"] != second["Message-ID"]
    assert first["Message-ID"] != message_id("ord_3", "confirmation")
    assert "damaged" not in first.get_content()  # the operator's reason is for the books
