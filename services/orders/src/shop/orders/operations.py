"""What an operator sees of an order's invocations in Restate and does to them: resume a
paused one, retry a backing-off one now, kill one as the last resort. The orders service is
the one that reads Restate's admin API (the gateway holds no admin rights), and each action
is recorded in the book with the order: what, when, by which admin credential, and how it went.
"""

import json
from datetime import UTC, datetime

import restate
from restate import Context, TerminalError

from shop.orders import book
from shop.orders.db import connection
from shop.orders.handlers import given, operator, order_book
from shop.orders.settings import settings
from shop.shared.contracts.orders import (
    ActionRecord,
    InvocationInfo,
    OperatorAction,
    OrderInvocations,
    OrderLookup,
)
from shop.shared.restate_admin import RestateAdmin

log = restate.getLogger(__name__)
# Restate's verb for each action: `resume` is also how a backing-off invocation retries now.
VERBS = {"resume": "resume", "retry": "resume", "kill": "kill"}
UNFINISHED = (
    "SELECT id, target, status, retry_count, last_failure FROM sys_invocation"
    " WHERE (id = '{run}' OR invoked_by_id = '{run}') AND status != 'completed'"
    " ORDER BY created_at"
)


admin = RestateAdmin(settings.restate_admin_urls)


async def order_run(order_id: str) -> str | None:
    """The order's workflow invocation, from the book (None: the book has no such order, or
    none of its run: nothing of it to show or act on)."""
    async with connection() as conn:
        row = await book.order_row(conn, order_id)
    return str(row["invocation_id"]) if row and row["invocation_id"] else None


def restate_id(invocation_id: str) -> str:
    """Only ids Restate gives out go into its SQL."""
    if not invocation_id.replace("_", "").isalnum():
        raise TerminalError(f"not an invocation id: {invocation_id!r}", status_code=400)
    return invocation_id


async def unfinished(order_id: str) -> list[InvocationInfo]:
    run = await order_run(order_id)
    if run is None:
        return []
    rows = await admin.query(UNFINISHED.format(run=restate_id(run)))
    failures = await last_failures([r["id"] for r in rows if r["status"] == "paused"])
    return [
        InvocationInfo(
            invocation_id=r["id"],
            target=r["target"],
            status=r["status"],
            retry_count=r.get("retry_count"),
            last_failure=r.get("last_failure") or failures.get(r["id"]),
        )
        for r in rows
    ]


async def last_failures(ids: list[str]) -> dict[str, str]:
    """What made each invocation pause: Restate keeps it in the journal's Paused event (not
    in sys_invocation, whose last_failure is a backing-off invocation's)."""
    if not ids:
        return {}
    listed = ", ".join(f"'{restate_id(i)}'" for i in ids)
    rows = await admin.query(
        f"SELECT id, event_json FROM sys_journal_events WHERE id IN ({listed})"
        " AND event_type = 'Paused' ORDER BY appended_at"
    )
    failures = {}
    for row in rows:  # the latest pause last
        failure = json.loads(row["event_json"]).get("last_failure") or {}
        step = failure.get("related_command_name")
        where = f" (at {step})" if step else ""
        failures[row["id"]] = f"{failure.get('error_code')} {failure.get('error_message')}{where}"
    return failures


@order_book.handler()
async def invocations(ctx: Context, lookup: OrderLookup) -> OrderInvocations:
    """The order's run and its calls that have not ended, with how each stands (operators):
    where a paused or backing-off step says what failed last."""
    given(lookup)
    operator(lookup.operator_token)
    return OrderInvocations(invocations=await unfinished(lookup.order_id))


async def act(order_id: str, act: OperatorAction) -> ActionRecord:
    """The action, at Restate's admin API, on one of this order's invocations only."""
    mine = {i.invocation_id: i for i in await unfinished(order_id)}
    target = mine.get(act.invocation_id)
    if target is None:
        outcome = "not done: no such unfinished invocation of this order"
    else:
        response = await admin.request(
            "PATCH", f"/invocations/{act.invocation_id}/{VERBS[act.action]}"
        )
        outcome = "done" if response.is_success else f"refused: {response.text[:200]}"
    done = ActionRecord(
        action=act.action,
        invocation_id=act.invocation_id,
        target=target.target if target else "",
        actor=act.actor,
        outcome=outcome,
        at=datetime.now(UTC),
    )
    async with connection() as conn:
        if await book.exists(conn, order_id):  # an order the book lacks keeps no record
            await book.record_action(conn, order_id, done)
    log.info(
        "operator %s: %s %s of order %s: %s",
        act.actor,
        act.action,
        act.invocation_id,
        order_id,
        outcome,
    )
    return done


@order_book.handler()
async def operate(ctx: Context, action: OperatorAction) -> ActionRecord:
    """Resume, retry now or kill one of the order's invocations (operators), recorded in the
    book. One journaled step: a retry of this handler does not act twice."""
    given(action)
    operator(action.operator_token)
    return await ctx.run_typed("act", act, order_id=action.order_id, act=action)
