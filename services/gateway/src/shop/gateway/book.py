"""The order book as operators ask for it: filters checked at the edge, and the CSV export,
streamed a page at a time (a year of orders is never held in memory)."""

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from shop.gateway.restate_ingress import RestateIngress
from shop.shared.contracts.orders import BookState, Cursor, OrderFilter, OrderPage, OrderSummary

CSV_PAGE = 1000  # orders per call to the book while exporting
CSV_COLUMNS = list(OrderSummary.model_fields)


def iso_8601_utc_unless_zoned(at: object) -> object:
    """ISO 8601 only (pydantic alone would read `0.5` as a Unix time); without a zone, UTC."""
    if not isinstance(at, str):
        return at
    try:
        parsed = datetime.fromisoformat(at)
    except ValueError:
        example = "e.g. 2026-12-01 or 2026-12-01T12:00Z"
        raise ValueError(f"an ISO 8601 date or time, {example}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


IsoTime = Annotated[datetime, BeforeValidator(iso_8601_utc_unless_zoned)]


class OrderListQuery(BaseModel):
    """`GET /api/admin/orders` (and `.csv`): newest first; `since` inclusive, `until` exclusive
    (ISO 8601; without a zone, UTC)."""

    model_config = ConfigDict(extra="forbid")

    status: BookState | None = None
    # Exact, any case; printable (PostgreSQL takes no NUL, and no address has a control).
    email: str | None = Field(None, min_length=1, max_length=254, pattern=r"^[^\x00-\x1f\x7f]+$")
    product_id: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    since: IsoTime | None = None
    until: IsoTime | None = None
    limit: int = Field(50, ge=1, le=200)
    cursor: Cursor | None = Field(None, description="`next_cursor` of the page before.")

    @field_validator("until")
    @classmethod
    def until_after_since(cls, until: datetime | None, info: ValidationInfo) -> datetime | None:
        since = info.data.get("since")
        if since and until and until <= since:
            raise ValueError("until must be after since")
        return until

    def filter(self) -> OrderFilter:
        return OrderFilter(**self.model_dump(include=set(OrderFilter.model_fields)))


def cell(value: object) -> str:
    """A CSV cell as a spreadsheet should show it: text that starts like a formula (an email
    address may) gets a quote in front; numbers and times as they are."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return f"'{value}"
    return str(value)


async def csv_rows(ingress: RestateIngress, query: OrderListQuery) -> AsyncIterator[str]:
    """The header and the first page of the book, taken before anything is sent (so a book
    that cannot answer is a 503, not a cut-off file), then each further page as it comes."""
    where = query.filter()
    page = await ingress.find_orders(where, CSV_PAGE, query.cursor)
    return pages(ingress, where, page)


async def pages(ingress: RestateIngress, where: OrderFilter, page: OrderPage) -> AsyncIterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    while True:
        for order in page.orders:
            writer.writerow([cell(getattr(order, column)) for column in CSV_COLUMNS])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if page.next_cursor is None:
            return
        page = await ingress.find_orders(where, CSV_PAGE, page.next_cursor)
