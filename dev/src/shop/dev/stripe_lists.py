"""Stripe's lists in the emulator: filtered by `created`, newest first, paged by `limit`,
`starting_after` and `ending_before`; and the events' lookup and filter."""

import operator
from collections.abc import Callable
from typing import Any

from shop.dev.stripe_params import StripeError, as_int, timestamp
from shop.dev.stripe_webhooks import EventStore

# Stripe's `created` list filter: created[<op>]=<unix seconds>, combinable.
CREATED_OPERATORS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def created_filter(query: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Stripe's `created` filter of a list: `created=<t>` the objects made in second t,
    `created[gt|gte|lt|lte]=<t>` (any of them together) those in the window; none: all.
    The values are checked at once, so a bad one is refused even when nothing matches."""
    created = query.get("created")
    if created is None:
        return lambda _: True
    if not isinstance(created, dict):
        exact = timestamp(created, "created")
        return lambda obj: obj["created"] == exact
    bounds = []
    for name, value in created.items():
        if name not in CREATED_OPERATORS:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Received unknown parameter: created[{name}]",
                param=f"created[{name}]",
            )
        bounds.append((CREATED_OPERATORS[name], timestamp(value, f"created[{name}]")))
    return lambda obj: all(compare(obj["created"], t) for compare, t in bounds)


def page(
    url: str,
    objects: list[dict[str, Any]],
    wanted: Callable[[dict[str, Any]], bool],
    query: dict[str, Any],
) -> dict[str, Any]:
    """One page of a list, as Stripe answers it: newest first, at most `limit` (1 to 100,
    default 10) of the objects `wanted` selects; `starting_after=<id>` the ones after that
    object (older), `ending_before=<id>` the ones just before it (newer); `has_more` says
    whether there are more beyond the page in the direction of travel."""
    limit = list_limit(query)
    after, before = query.get("starting_after"), query.get("ending_before")
    if after and before:
        raise StripeError(
            400,
            "invalid_request_error",
            "You may only specify one of these parameters: ending_before, starting_after.",
        )
    # Newest first; objects made in the same second in the order they were made, newest first.
    ordered = sorted(reversed(objects), key=lambda o: o["created"], reverse=True)
    if after:
        ordered = ordered[cursor(ordered, after, "starting_after") + 1 :]
    elif before:
        ordered = ordered[: cursor(ordered, before, "ending_before")]
    selected = [o for o in ordered if wanted(o)]
    data = selected[-limit:] if before else selected[:limit]
    return {"object": "list", "url": url, "has_more": len(selected) > limit, "data": data}


def list_limit(query: dict[str, Any]) -> int:
    if "limit" not in query:
        return 10
    limit = as_int(query, "limit")
    if limit > 100:
        raise StripeError(
            400,
            "invalid_request_error",
            "Invalid limit: must be between 1 and 100.",
            param="limit",
        )
    return limit


def cursor(ordered: list[dict[str, Any]], object_id: Any, param: str) -> int:
    """Where the object a page starts after (or ends before) is in the list."""
    for index, obj in enumerate(ordered):
        if obj["id"] == object_id:
            return index
    raise StripeError(
        400,
        "invalid_request_error",
        f"No such object: '{object_id}'",
        code="resource_missing",
        param=param,
    )


def get_event(store: EventStore, event_id: str) -> dict[str, Any]:
    event = store.get(event_id)
    if event is None:
        raise StripeError(
            404,
            "invalid_request_error",
            f"No such event: '{event_id}'",
            code="resource_missing",
            param="id",
        )
    return event


def event_filter(query: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Events of one type (`type`, `*` wildcards as Stripe's `payment_intent.*`) and/or about
    one intent (`payment_intent`, the emulator's own filter)."""
    wanted_type = str(query.get("type") or "*")
    intent_id = query.get("payment_intent")

    def wanted(event: dict[str, Any]) -> bool:
        if intent_id and event["data"]["object"].get("id") != intent_id:
            return False
        if wanted_type.endswith("*"):
            return event["type"].startswith(wanted_type[:-1])
        return event["type"] == wanted_type

    return wanted
