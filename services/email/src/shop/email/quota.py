"""MailQuota: how many failure mails an address got lately, one virtual object per address
(by digest). Declining costs an attacker nothing (no card is needed), so without it anyone
could have the shop mail any address without end from its own sender."""

import time

import restate
from pydantic import BaseModel
from restate import ObjectContext

from shop.email.settings import settings
from shop.shared import names
from shop.shared.contracts.common import OrderRef
from shop.shared.contracts.email import MailAllowance

mail_quota = restate.VirtualObject(names.MAIL_QUOTA, ingress_private=True)  # the workflow's
SENT = "sent"
WINDOW_SECONDS = 3600


class Sent(BaseModel):
    at: list[float]  # when each failure mail of the last hour was allowed (epoch seconds)


async def now() -> float:
    return time.time()


@mail_quota.handler()
async def take(ctx: ObjectContext, ref: OrderRef) -> MailAllowance:
    """One more failure mail for this address, unless it had its share this hour."""
    at = await ctx.run_typed("now", now)  # journaled: a replay counts the same
    sent = await ctx.get(SENT, type_hint=Sent) or Sent(at=[])
    recent = [t for t in sent.at if t > at - WINDOW_SECONDS]
    allowed = len(recent) < settings.failed_mails_per_address_per_hour
    if allowed:
        recent.append(at)
    ctx.set(SENT, Sent(at=recent))
    return MailAllowance(allowed=allowed)
