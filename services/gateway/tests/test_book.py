from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shop.gateway.book import OrderListQuery, cell
from shop.shared.contracts.orders import decode_cursor, encode_cursor


def test_a_cursor_comes_back_as_it_was_given() -> None:
    at = datetime(2026, 12, 6, 7, 30, 1, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(at, "ord_1")) == (at, "ord_1")


@pytest.mark.parametrize("cursor", ["", "abc", "W10", encode_cursor(datetime(2026, 1, 1), "x")])
def test_anything_else_is_not_a_cursor(cursor: str) -> None:
    with pytest.raises(ValidationError) as e:
        OrderListQuery(cursor=cursor)
    assert e.value.errors()[0]["loc"] == ("cursor",)


def test_times_without_a_zone_are_utc_and_until_comes_after_since() -> None:
    query = OrderListQuery.model_validate(
        {"since": "2026-12-01", "until": "2026-12-02T00:00:00+01:00"}
    )
    assert query.since == datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(ValidationError) as e:
        OrderListQuery.model_validate({"since": "2026-12-02", "until": "2026-12-01"})
    assert e.value.errors()[0]["loc"] == ("until",)
    assert OrderListQuery(email="a@b.c").filter().email == "a@b.c"
    for not_iso in ("0.5", "1733400000", "yesterday"):
        with pytest.raises(ValidationError):
            OrderListQuery.model_validate({"since": not_iso})


def test_a_csv_cell_that_looks_like_a_formula_is_text() -> None:
    assert cell("=HYPERLINK(1)@example.com") == "'=HYPERLINK(1)@example.com"
    assert cell("-2") == "'-2" and cell(-2) == "-2"
    assert cell("ann@example.com") == "ann@example.com"
    assert cell(1200) == "1200"
