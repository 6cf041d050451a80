"""Requests, errors and latency per Restate handler, as Prometheus sees them: every attempt
of every handler of a service is counted by its outcome and timed (shop.handler.attempts,
shop.handler.duration). An attempt, not an invocation: Restate retries a failed one and
resumes a suspended one in a new attempt, which replays the journal first."""

import functools
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from restate.exceptions import SuspendedException, TerminalError

from shop.shared.telemetry import counted_from_zero, handler_attempts, handler_duration

OUTCOMES = ["ok", "terminal", "error", "suspended"]


def timed(services: Iterable[Any]) -> None:
    """Wraps each handler of these Restate services (before the app is made from them)."""
    for service in services:
        for handler in service.handlers.values():
            if getattr(handler.fn, "shop_timed", False):
                continue  # an app made again of the same services (tests)
            name = f"{service.name}/{handler.name}"
            handler.fn = attempt_of(name, handler.fn)
            counted_from_zero(handler_attempts, "outcome", OUTCOMES, also={"handler": name})


def attempt_of(name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    handler = {"handler": name}
    by_outcome = {outcome: {**handler, "outcome": outcome} for outcome in OUTCOMES}

    @functools.wraps(fn)
    async def attempt(*args: Any) -> Any:
        started, outcome = time.perf_counter(), "error"
        try:
            result = await fn(*args)
            outcome = "ok"
            return result
        except TerminalError:
            outcome = "terminal"
            raise
        except SuspendedException:
            outcome = "suspended"
            raise
        finally:
            handler_attempts.add(1, by_outcome[outcome])
            handler_duration.record(time.perf_counter() - started, handler)

    attempt.shop_timed = True  # type: ignore[attr-defined]  # a mark, read above
    return attempt
