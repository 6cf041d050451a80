"""The one way a test (or the dev stack) waits: poll a condition until it holds, with a
deadline. Never sleep for a guessed time and then assert."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    probe: Callable[[], T | None],
    timeout: float = 30,
    every: float = 0.1,
    *,
    what: str = "condition",
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Calls probe until it returns something truthy, and returns that, at most `timeout`
    seconds. An exception of a `retry_on` type counts as "not yet" (a server restarting
    refuses connections); the last value or exception is in the TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value: object = probe()
            if value:
                return value  # type: ignore[return-value]
        except retry_on as e:
            value = e
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout}s (last: {value!r})")
        time.sleep(every)
