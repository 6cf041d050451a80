import pytest

from shop.gateway.events import seen_event


@pytest.mark.parametrize(
    ("header", "seen"),
    [("7", 7), ("0", 0), (None, None), ("", None), ("²", None), ("٣", None), ("-1", None)],
)
def test_only_a_plain_number_is_an_event_id(header: str | None, seen: int | None) -> None:
    assert seen_event(header) == seen
