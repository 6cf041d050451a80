"""What SIGTERM does to an invocation's input: it ends, once, like Restate's inactivity
timeout ends it; and the drain deadline ends the process whatever still runs."""

import asyncio
import subprocess
import sys
import time

from shop.shared.drain import (
    END_OF_INPUT,
    Draining,
    InputUntilShutdown,
    Message,
    Receive,
    Scope,
    Send,
)


def chunk(data: bytes, more: bool = True) -> dict[str, object]:
    return {"type": "http.request", "body": data, "more_body": more}


DISCONNECT: dict[str, object] = {"type": "http.disconnect"}


class Restate:
    """An invocation's request stream: what Restate sends, when the test says so."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self.asked = asyncio.Event()  # set when the invocation reads its next message

    async def receive(self) -> dict[str, object]:
        self.asked.set()
        return await self.queue.get()


async def test_the_input_ends_once_on_shutdown_then_only_the_disconnect_passes() -> None:
    restate, draining = Restate(), Draining()
    receive = InputUntilShutdown(restate.receive, draining.stopping)
    restate.queue.put_nowait(chunk(b"start"))
    assert await receive() == chunk(b"start")

    restate.asked.clear()
    waiting = asyncio.ensure_future(receive())  # the SDK waits for Restate's next message
    await asyncio.wait_for(restate.asked.wait(), 1)
    draining.start()
    assert await asyncio.wait_for(waiting, 1) == END_OF_INPUT

    # A completion Restate sent meanwhile is not passed on (it is sent again on resumption):
    # queued before the disconnect, it would come out first if it were (no wait needed).
    restate.queue.put_nowait(chunk(b"late completion"))
    after = asyncio.ensure_future(receive())
    restate.queue.put_nowait(DISCONNECT)
    assert await asyncio.wait_for(after, 1) == DISCONNECT


async def test_an_input_restate_ended_is_not_ended_again() -> None:
    restate, draining = Restate(), Draining()
    receive = InputUntilShutdown(restate.receive, draining.stopping)
    restate.queue.put_nowait(chunk(b"all of it", more=False))
    assert await receive() == chunk(b"all of it", more=False)
    waiting = asyncio.ensure_future(receive())
    draining.start()
    # No second end of input: the shutdown comes before the disconnect (even before the
    # receive runs), so a second end would come out first (no wait needed).
    restate.queue.put_nowait(DISCONNECT)
    assert await asyncio.wait_for(waiting, 1) == DISCONNECT


async def test_only_invocations_are_drained() -> None:
    seen: list[object] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(receive)

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    draining = Draining()
    wrapped = draining.wrap(app)
    plain = Restate().receive
    await wrapped({"type": "http", "path": "/health"}, plain, send)
    await wrapped({"type": "http", "path": "/invoke/Payments/charge"}, plain, send)
    assert seen[0] is plain and isinstance(seen[1], InputUntilShutdown)


def test_the_drain_deadline_ends_a_process_that_would_not_end() -> None:
    code = (
        "import time; from shop.shared.drain import exit_at\n"
        "exit_at(0.2, before_exit=lambda: print('flushed', flush=True))\n"
        "time.sleep(30)\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert time.monotonic() - started < 10  # interpreter start included
    assert done.returncode == 0 and done.stdout == "flushed\n"
    assert "still running 0.2s after SIGTERM" in done.stderr
