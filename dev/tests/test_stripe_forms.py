from shop.dev.stripe_forms import decode


def test_nested_keys_become_dicts_and_lists() -> None:
    pairs = [
        ("amount", "1200"),
        ("metadata[order_id]", "ord_1"),
        ("metadata[note]", "x"),
        ("payment_method_types[0]", "card"),
        ("payment_method_types[1]", "sepa_debit"),
        ("items[0][price]", "p1"),
        ("items[1][price]", "p2"),
    ]
    assert decode(pairs) == {
        "amount": "1200",
        "metadata": {"order_id": "ord_1", "note": "x"},
        "payment_method_types": ["card", "sepa_debit"],
        "items": [{"price": "p1"}, {"price": "p2"}],
    }
