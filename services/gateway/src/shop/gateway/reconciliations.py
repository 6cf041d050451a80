"""A reconciliation as operators ask for it (the window, checked at the edge), and the
daily one kept planned."""

import asyncio
import logging
import secrets
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from shop.gateway.book import IsoTime
from shop.gateway.restate_ingress import RestateIngress, RestateUnavailable
from shop.shared.contracts.orders import ReconciliationAsk

log = logging.getLogger(__name__)

RECONCILIATION_ID_PATTERN = r"^rec_[0-9a-z_]{1,40}$"
# A month of payments at most: a longer window is several runs (each pages Stripe's list).
MAX_WINDOW = timedelta(days=31)


class ReconciliationRequest(BaseModel):
    """`POST /api/admin/reconciliations`: [since, until), ISO 8601 (without a zone, UTC)."""

    model_config = ConfigDict(extra="forbid")

    since: IsoTime
    until: IsoTime

    @field_validator("until")
    @classmethod
    def a_window_of_at_most_a_month(cls, until: datetime, info: ValidationInfo) -> datetime:
        since: datetime | None = info.data.get("since")
        if since is not None and until <= since:
            raise ValueError("until must be after since")
        if since is not None and until - since > MAX_WINDOW:
            raise ValueError("a window of at most 31 days")
        return until


def reconciliation_ask(window: ReconciliationRequest) -> ReconciliationAsk:
    """A new reconciliation of the window (the ingress client puts the operators' token in)."""
    return ReconciliationAsk(
        reconciliation_id=f"rec_{secrets.token_hex(12)}",
        since=window.since,
        until=window.until,
        operator_token="",
    )


async def keep_daily_reconciliation(ingress: RestateIngress, every: float = 5) -> None:
    """Once the shop is ready, makes sure the daily reconciliation is planned: its object in
    Restate keeps it planned from then on, and asking again changes nothing. Every gateway
    asks when it starts, so a shop deployed anew (or whose Restate lost its state) gets it."""
    while True:
        try:
            if not await ingress.missing_services():
                day = await ingress.keep_daily_reconciliation()
                log.info("daily reconciliation planned: next on %s, for the day before", day)
                return
        except RestateUnavailable as e:
            log.warning("daily reconciliation not planned yet: %s", e)
        await asyncio.sleep(every)
