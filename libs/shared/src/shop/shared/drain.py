"""What SIGTERM does to the invocations a service is running: they suspend, at once.

Restate keeps an invocation's HTTP/2 stream open while its handler waits (on a durable timer,
a call to another service, a promise), and a server that waits for open streams to end before
it exits would wait out its whole graceful timeout, then cut them. Instead, on shutdown every
invocation in flight is asked to suspend, exactly as Restate asks one when its inactivity
timeout passes: its request body is ended. The handler runs on to its next await of something
Restate has not answered yet (a `ctx.run` under way first finishes and its result goes to the
journal) and suspends there; Restate resumes it from its journal when that something is
there, on this deployment once it serves again (or on a new process at the same address).
Nothing journaled is lost and no invocation holds the process for a timer. Only a `ctx.run`
still running at the drain deadline is cut off, and Restate retries it.
"""

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

END_OF_INPUT: Message = {"type": "http.request", "body": b"", "more_body": False}
log = logging.getLogger(__name__)


def exit_at(deadline_seconds: float, before_exit: Callable[[], None] = lambda: None) -> None:
    """The drain deadline, kept whatever else happens: `deadline_seconds` from now the process
    ends, unless it has ended by itself. A thread, so that even a blocked event loop cannot
    hold the process. (Not the server's graceful timeout: that cancels the handlers, the SDK
    swallows the cancellation, and a handler then waiting to send its last frame on a
    connection being torn down waits forever; seen once, in a test.)"""

    def expire() -> None:
        log.warning(
            "invocations still running %ss after SIGTERM: exiting now (Restate retries them)",
            deadline_seconds,
        )
        before_exit()
        logging.shutdown()
        os._exit(0)

    timer = threading.Timer(deadline_seconds, expire)
    timer.daemon = True
    timer.start()


class Draining:
    """Set once the process is stopping; `wrap` makes an ASGI app's invocations notice."""

    def __init__(self) -> None:
        self._stopping: asyncio.Future[None] | None = None

    @property
    def stopping(self) -> asyncio.Future[None]:
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_future()
        return self._stopping

    def start(self) -> None:
        """From now on, each invocation's input ends (it suspends at its next wait)."""
        if not self.stopping.done():
            self.stopping.set_result(None)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def draining_app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or "/invoke/" not in scope["path"]:
                await app(scope, receive, send)  # health, discovery
                return
            input_ = InputUntilShutdown(receive, self.stopping)
            try:
                await app(scope, input_, send)
            finally:
                input_.close()

        return draining_app


class InputUntilShutdown:
    """An invocation's `receive`: Restate's messages, until shutdown ends the input (once).

    After the input ended, by Restate or by shutdown, only the disconnect is passed on: what
    Restate sends after our end would be journal entries the suspending handler no longer
    reads (Restate sends them again when it resumes the invocation)."""

    def __init__(self, receive: Receive, stopping: asyncio.Future[None]) -> None:
        self.receive, self.stopping = receive, stopping
        self.pending: asyncio.Future[Message] | None = None  # a receive() under way
        self.ended = False

    async def _next(self) -> Message:
        if self.pending is None:
            self.pending = asyncio.ensure_future(self.receive())
        if not self.ended and not self.pending.done():
            await asyncio.wait((self.pending, self.stopping), return_when=asyncio.FIRST_COMPLETED)
            if not self.pending.done():
                self.ended = True
                return END_OF_INPUT
        message, self.pending = await self.pending, None
        return message

    async def __call__(self) -> Message:
        if self.ended:
            while (message := await self._next())["type"] != "http.disconnect":
                pass
            return message
        message = await self._next()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self.ended = True
        return message

    def close(self) -> None:
        if self.pending is not None and not self.pending.done():
            self.pending.cancel()
