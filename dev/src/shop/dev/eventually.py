"""The one way a test (or the dev stack) waits: poll a condition until it holds, with a
deadline. Never sleep for a guessed time and then assert."""

import time
from collections.abc import Callable
from typing import Literal, TypeVar

T = TypeVar("T")


def eventually(
    probe: Callable[[], T | Literal[False] | None],
    timeout: float = 30,
    every: float = 0.1,
    *,
    what: str = "condition",
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Calls probe until it returns something truthy, and returns that, at most `timeout`
    seconds (a probe `condition and value` returns the value). An exception of a `retry_on`
    type counts as "not yet" (a server restarting refuses connections); the last value or
    exception is in the TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        last: object
        try:
            value = probe()
            if value:
                return value
            last = value
        except retry_on as e:
            last = e
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout}s (last: {last!r})")
        time.sleep(every)
